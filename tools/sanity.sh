#!/usr/bin/env bash
# ansible-test sanity needs the collection at ansible_collections/<ns>/<name>: run it on a copy of
# the tracked and new (not ignored) files in a temporary tree, removed afterwards. It checks what the
# collection ships; the pytest suites, benchmarks and tooling (build_ignore'd) are held to ruff instead.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PROJECT_ROOT"

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
dest="$tree/ansible_collections/aiplatform/ollama"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  # tests/config.yml is ansible-test's own (python_requires of the modules): it comes along
  case "$f" in tests/config.yml) ;; tests/*|benchmarks/*|tools/*|.ci/*) continue ;; esac
  [ -e "$f" ] && printf '%s\0' "$f"
done | xargs -0 cp --parents -t "$dest"
# ansible-test keeps its per-test venvs under ~/.ansible/test and bootstraps pip there with a script
# from a host these machines cannot reach: give it a home in the project cache and a local
# bootstrap script (the bundled ensurepip, then pip installs the pinned pip from PyPI).
export HOME="$AIPLATFORM_OLLAMA_CACHE/ansible-test-home"
# the pip version ansible-test bootstraps into its venvs (24.2 with 2.19, 23.1.2 with 2.16 for `make oldest`)
python_version=$(python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
pip_version=$(python -c 'import sys, types, ansible_test._internal.python_requirements as r
print(r.get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])' "$python_version")
bootstrap="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$bootstrap" ]; then
  mkdir -p "$(dirname "$bootstrap")"
  cat > "$bootstrap" <<'PY'
import ensurepip, os, subprocess, sys
ensurepip.bootstrap(upgrade=True)
os.environ.pop("PIP_CONFIG_FILE", None)  # ensurepip points it at /dev/null: restore the machine's pip config
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
PY
fi
cd "$dest"
git init -q && git add -A  # ansible-test lists the collection's files through git
# --requirements installs each test's own pinned tools (pylint, yamllint, …) into the venv once
ansible-test --version
ansible-test sanity --python "$python_version" --requirements --color no "$@"
