# Shared environment for the project's scripts: sourced, never run.
# Everything the toolchain builds or downloads lives under one cache directory outside the
# work tree, so a fresh clone on the same machine reuses it and nothing global is touched.
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PROJECT_ROOT
export AIPLATFORM_OLLAMA_CACHE="${AIPLATFORM_OLLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aiplatform-ollama}"
export AIPLATFORM_SHARED_DIR="${AIPLATFORM_SHARED_DIR:-$PROJECT_ROOT/../shared}"
# the pinned chart and Flux CRDs the tests read: the shared fixtures where they exist, else the copy
# `make setup` fetched from their upstream sources into the cache (tools/fetch_fixtures.sh)
if [ -z "${AIPLATFORM_FIXTURES_DIR:-}" ]; then
  if [ -d "$AIPLATFORM_SHARED_DIR/fixtures" ]; then
    AIPLATFORM_FIXTURES_DIR="$AIPLATFORM_SHARED_DIR/fixtures"
  else
    AIPLATFORM_FIXTURES_DIR="$AIPLATFORM_OLLAMA_CACHE/fixtures"
  fi
fi
export AIPLATFORM_FIXTURES_DIR
export OLLAMA_VERSION="${OLLAMA_VERSION:-0.18.3}"
# the service role's upgrade test installs the same source linked with this version string (tools/setup.sh)
export OLLAMA_REBUILD_VERSION="${OLLAMA_REBUILD_VERSION:-$OLLAMA_VERSION-rebuild}"
export HELM_VERSION="${HELM_VERSION:-v3.21.4}"
export OLLAMA_BIN="${OLLAMA_BIN:-$AIPLATFORM_OLLAMA_CACHE/bin/ollama}"
export HELM_BIN="${HELM_BIN:-$AIPLATFORM_OLLAMA_CACHE/bin/helm}"
# podman reads only the project's own configuration, never /etc/containers
export CONTAINERS_CONF="$AIPLATFORM_OLLAMA_CACHE/podman/containers.conf"
export CONTAINERS_STORAGE_CONF="$AIPLATFORM_OLLAMA_CACHE/podman/storage.conf"
export MOLECULE_IMAGE="${MOLECULE_IMAGE:-localhost/debian-systemd:bookworm}"
export ANSIBLE_COLLECTIONS_PATH="$PROJECT_ROOT/.collections"
export PATH="$PROJECT_ROOT/.venv/bin:$PATH"
# AIPLATFORM_VENV puts another venv ahead of .venv: `make oldest` runs the sanity and unit tests with
# .venv-oldest, the oldest ansible-core meta/runtime.yml claims (requirements-oldest.txt)
if [ -n "${AIPLATFORM_VENV:-}" ]; then export PATH="$AIPLATFORM_VENV/bin:$PATH"; fi
# the test cluster: a real control plane, kwok nodes and Flux, built from Go modules by tools/build_cluster.sh
export KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.36.4}"
export ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
export KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
export FLUX_SOURCE_VERSION="${FLUX_SOURCE_VERSION:-v1.9.5}"
export FLUX_KUSTOMIZE_VERSION="${FLUX_KUSTOMIZE_VERSION:-v1.9.5}"
export FLUX_HELM_VERSION="${FLUX_HELM_VERSION:-v1.6.4}"
# the test cluster's real node (tools/build_node.sh)
export CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
export CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-v1.10.0}"
export COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
export KNP_VERSION="${KNP_VERSION:-v0.8.0}"
export BUSYBOX_DEB_VERSION="${BUSYBOX_DEB_VERSION:-1:1.35.0-4+deb12u1+b1}"
export CLUSTER_BIN_DIR="$AIPLATFORM_OLLAMA_CACHE/cluster/bin"
export CLUSTER_ASSETS_DIR="$AIPLATFORM_OLLAMA_CACHE/cluster/assets"
