#!/usr/bin/env bash
# The main job on the embedded default inventory: site.yml against inventories/local, with a real
# local Ollama and registry started for the run and stopped after it. Run twice to show changed=0.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PROJECT_ROOT"
# The demo's Ollama serves the store that the model_cache stage seeds (inventories/local), so the
# verify stage proves the seeded store is what Ollama loads.
# each demo starts from an empty store: its registry, and so the model's reference, change per run
rm -rf build/model-cache
exec python tools/with_services.py --models-dir build/model-cache/models bash -c 'set -o pipefail

  mkdir -p build &&
  ansible-playbook -i inventories/local playbooks/site.yml "$@" &&
  echo "==> second run: nothing may change" &&
  ansible-playbook -i inventories/local playbooks/site.yml "$@" | tee build/demo-second-run.log &&
  grep -Eq "changed=0 +unreachable=0 +failed=0" build/demo-second-run.log
' demo "$@"
