#!/usr/bin/env bash
# The main job on the embedded default inventory: site.yml against inventories/local, with a real
# local Ollama and registry started for the run and stopped after it. Run twice to show changed=0.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PROJECT_ROOT"
exec python tools/with_services.py bash -c 'set -o pipefail

  mkdir -p build &&
  ansible-playbook -i inventories/local playbooks/site.yml "$@" &&
  echo "==> second run: nothing may change" &&
  ansible-playbook -i inventories/local playbooks/site.yml "$@" | tee build/demo-second-run.log &&
  grep -Eq "changed=0 +unreachable=0 +failed=0" build/demo-second-run.log
' demo "$@"
