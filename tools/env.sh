# Shared environment for the project's scripts: sourced, never run.
# Everything the toolchain builds or downloads lives under one cache directory outside the
# work tree, so a fresh clone on the same machine reuses it and nothing global is touched.
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PROJECT_ROOT
export AIPLATFORM_OLLAMA_CACHE="${AIPLATFORM_OLLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aiplatform-ollama}"
export AIPLATFORM_SHARED_DIR="${AIPLATFORM_SHARED_DIR:-$PROJECT_ROOT/../shared}"
export AIPLATFORM_FIXTURES_DIR="${AIPLATFORM_FIXTURES_DIR:-$AIPLATFORM_SHARED_DIR/fixtures}"
export OLLAMA_VERSION="${OLLAMA_VERSION:-0.18.3}"
export HELM_VERSION="${HELM_VERSION:-v3.21.4}"
export OLLAMA_BIN="${OLLAMA_BIN:-$AIPLATFORM_OLLAMA_CACHE/bin/ollama}"
export HELM_BIN="${HELM_BIN:-$AIPLATFORM_OLLAMA_CACHE/bin/helm}"
# podman reads only the project's own configuration, never /etc/containers
export CONTAINERS_CONF="$AIPLATFORM_OLLAMA_CACHE/podman/containers.conf"
export CONTAINERS_STORAGE_CONF="$AIPLATFORM_OLLAMA_CACHE/podman/storage.conf"
export MOLECULE_IMAGE="${MOLECULE_IMAGE:-localhost/debian-systemd:bookworm}"
export ANSIBLE_COLLECTIONS_PATH="$PROJECT_ROOT/.collections"
export PATH="$PROJECT_ROOT/.venv/bin:$PATH"
