#!/usr/bin/env bash
# Idempotent toolchain setup: Debian packages, the Python venvs (.venv, the pinned toolchain, and
# .venv-oldest, the oldest ansible-core claimed), Ollama and helm built from their Go modules, the
# podman systemd image for molecule, the test cluster's binaries (tools/build_cluster.sh), its real
# node and the images the node runs (tools/build_node.sh) and the pinned chart and CRDs
# (tools/fetch_fixtures.sh). Each step is skipped when its result is present.
#
# `tools/setup.sh demo` sets up only what `make demo` uses: the Debian packages of the local registry
# and of the Ollama build, .venv, and Ollama. The rest (a cluster's worth of Go builds, the podman
# image) is for the tests, and `make test` builds it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PROJECT_ROOT"

say() { printf '==> %s\n' "$*"; }

MODE=${1:-all}
case "$MODE" in
  all|demo) ;;
  *) echo "usage: tools/setup.sh [all|demo]" >&2; exit 2 ;;
esac

# the demo: the local registry and its CDN, and the Ollama build (cgo, llama.cpp's vendored headers)
DEMO_PACKAGES=(docker-registry nginx-light fcgiwrap nlohmann-json3-dev libstb-dev gcc g++ libc6-dev make curl
               ca-certificates)
# the tests: podman for molecule's systemd host; the test cluster's real node also needs nft, iptables,
# ip, unshare/nsenter and sysctl
TEST_PACKAGES=(podman runc debootstrap shellcheck nftables iptables iproute2 procps util-linux)

install_debian_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# A venv that follows a requirements file: (re)installed when that file or the runtime requirements.txt
# it includes changes (the stamp is their hash). A `*` .gitignore inside keeps it out of git's view, and
# so out of tools/sanity.sh's copy and ansible-lint's file list, wherever it is.
install_venv() {
  local venv=$1 requirements=$2
  local stamp=$venv/.requirements.sha256
  local want
  want=$(cat "$requirements" requirements.txt | sha256sum | cut -d' ' -f1)
  [ -x "$venv/bin/python" ] || { say "creating $venv"; python3 -m venv "$venv"; }
  [ -f "$venv/.gitignore" ] || echo '*' > "$venv/.gitignore"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing $requirements into $venv"
    "$venv/bin/pip" install -q -r "$requirements"
    echo "$want" > "$stamp"
  fi
}

# Ollama 0.18.3 builds from its Go module with cgo; the module zip lacks llama.cpp's vendor/ headers,
# which come from Debian (nlohmann json, stb) and from the miniaudio sdist on PyPI.
build_ollama() {
  if "$OLLAMA_BIN" --version 2>/dev/null | grep -q "$OLLAMA_VERSION"; then return; fi
  say "building ollama $OLLAMA_VERSION from its Go module (several minutes on 2 cores)"
  local src="$AIPLATFORM_OLLAMA_CACHE/src"
  mkdir -p "$src/dl" "$src/inc/miniaudio" "$(dirname "$OLLAMA_BIN")"
  [ -f "$src/dl/miniaudio-1.71.tar.gz" ] ||
    .venv/bin/pip download -q --no-deps --no-binary :all: -d "$src/dl" miniaudio==1.71
  tar -xzf "$src/dl/miniaudio-1.71.tar.gz" -O miniaudio-1.71/miniaudio/miniaudio.h \
    > "$src/inc/miniaudio/miniaudio.h"
  # the release scripts stamp the version at link time; without it the server reports 0.0.0
  CGO_CPPFLAGS="-I$src/inc" GOBIN="$(dirname "$OLLAMA_BIN")" \
    go install -ldflags "-X=github.com/ollama/ollama/version.Version=$OLLAMA_VERSION -X=github.com/ollama/ollama/server.mode=release" \
    "github.com/ollama/ollama@v$OLLAMA_VERSION"
}

build_helm() {
  if "$HELM_BIN" version --short 2>/dev/null | grep -q "$HELM_VERSION"; then return; fi
  say "building helm $HELM_VERSION from its Go module"
  mkdir -p "$(dirname "$HELM_BIN")"
  GOBIN="$(dirname "$HELM_BIN")" go install -ldflags "-X=helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

if [ "$MODE" = demo ]; then
  install_debian_packages "${DEMO_PACKAGES[@]}"
  install_venv .venv requirements-dev.txt
  build_ollama
  say "demo toolchain ready (cache: $AIPLATFORM_OLLAMA_CACHE); make test builds the rest"
  exit 0
fi
install_debian_packages "${DEMO_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
install_venv .venv requirements-dev.txt          # the pinned toolchain
install_venv .venv-oldest requirements-oldest.txt  # the oldest ansible-core claimed, for `make oldest`
build_ollama
build_helm
"$PROJECT_ROOT/tools/podman_image.sh"
"$PROJECT_ROOT/tools/build_cluster.sh"
"$PROJECT_ROOT/tools/build_node.sh"
"$PROJECT_ROOT/tools/fetch_fixtures.sh"
say "toolchain ready (cache: $AIPLATFORM_OLLAMA_CACHE)"
