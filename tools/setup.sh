#!/usr/bin/env bash
# Idempotent toolchain setup: Debian packages, the Python venvs (.venv, the pinned toolchain, and
# .venv-oldest, the oldest ansible-core claimed), Ollama (and a second link of it under another version
# string, for the service role's upgrade test) and helm built from their Go modules, the
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
# ggml's cgo flags carry no -m flag (baseline x86-64 kernels), while the release binaries load the CPU
# backend variant built for the machine's SIMD features: tools/ggml_cpu_variant.py names that variant
# and its gcc flags (from ggml's CMake files), and they go into CGO_CFLAGS/CGO_CXXFLAGS, after Go's
# own defaults. AIPLATFORM_OLLAMA_CPU_VARIANT picks another variant (x64: a build any x86-64 runs).
# The binary is cached under a stamp of version and flags, so a binary built with other flags (or
# before the flags were added) is rebuilt once.
OLLAMA_CPU_VARIANT=""
OLLAMA_CGO_FLAGS=""
ollama_cpu_flags() {
  [ -n "$OLLAMA_CPU_VARIANT" ] && return
  local choice
  choice=$(python3 tools/ggml_cpu_variant.py --variant "${AIPLATFORM_OLLAMA_CPU_VARIANT:-}")
  OLLAMA_CPU_VARIANT=${choice%% *}
  OLLAMA_CGO_FLAGS="-O2 -g"
  [ "$choice" = "$OLLAMA_CPU_VARIANT" ] || OLLAMA_CGO_FLAGS+=" ${choice#* }"
}

# go install of Ollama's module, its version string stamped at link time (without it the server
# reports 0.0.0), ggml's kernels built with ollama_cpu_flags, into a temporary GOBIN first so the
# binary appears whole: tests may be running the previous one
install_ollama() {
  local version=$1 bin=$2
  local tmp
  tmp=$(mktemp -d "$(dirname "$bin")/.install.XXXXXX")
  CGO_CPPFLAGS="-I$AIPLATFORM_OLLAMA_CACHE/src/inc" CGO_CFLAGS="$OLLAMA_CGO_FLAGS" CGO_CXXFLAGS="$OLLAMA_CGO_FLAGS" \
    GOBIN="$tmp" go install -ldflags "-X=github.com/ollama/ollama/version.Version=$version -X=github.com/ollama/ollama/server.mode=release" \
    "github.com/ollama/ollama@v$OLLAMA_VERSION"
  mv -f "$tmp/ollama" "$bin"
  rmdir "$tmp"
}

build_ollama() {
  ollama_cpu_flags
  local stamp="$OLLAMA_BIN.build" want="$OLLAMA_VERSION $OLLAMA_CPU_VARIANT $OLLAMA_CGO_FLAGS"
  say "ollama $OLLAMA_VERSION: ggml CPU variant $OLLAMA_CPU_VARIANT (CGO_CFLAGS/CGO_CXXFLAGS: $OLLAMA_CGO_FLAGS)"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && "$OLLAMA_BIN" --version 2>/dev/null | grep -q "$OLLAMA_VERSION"; then
    return
  fi
  say "building ollama $OLLAMA_VERSION from its Go module (several minutes on 2 cores)"
  local src="$AIPLATFORM_OLLAMA_CACHE/src"
  mkdir -p "$src/dl" "$src/inc/miniaudio" "$(dirname "$OLLAMA_BIN")"
  [ -f "$src/dl/miniaudio-1.71.tar.gz" ] ||
    .venv/bin/pip download -q --no-deps --no-binary :all: -d "$src/dl" miniaudio==1.71
  tar -xzf "$src/dl/miniaudio-1.71.tar.gz" -O miniaudio-1.71/miniaudio/miniaudio.h \
    > "$src/inc/miniaudio/miniaudio.h"
  install_ollama "$OLLAMA_VERSION" "$OLLAMA_BIN"
  echo "$want" > "$stamp"
}

# The same source linked once more with another version string, for the service role's upgrade and
# rollback tests (molecule/service): a real second build whose `ollama --version` and /api/version
# report OLLAMA_REBUILD_VERSION. Only the link step runs again (Go's build cache holds the rest).
build_ollama_rebuild() {
  local bin="$AIPLATFORM_OLLAMA_CACHE/ollama-versions/$OLLAMA_REBUILD_VERSION/ollama"
  if "$bin" --version 2>/dev/null | grep -qF "$OLLAMA_REBUILD_VERSION"; then return; fi
  say "linking ollama $OLLAMA_VERSION again as $OLLAMA_REBUILD_VERSION"
  mkdir -p "$(dirname "$bin")"
  # the same cgo flags as build_ollama's, or the build cache misses and ggml compiles again
  ollama_cpu_flags
  install_ollama "$OLLAMA_REBUILD_VERSION" "$bin"
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
build_ollama_rebuild
build_helm
"$PROJECT_ROOT/tools/podman_image.sh"
"$PROJECT_ROOT/tools/build_cluster.sh"
"$PROJECT_ROOT/tools/build_node.sh"
"$PROJECT_ROOT/tools/fetch_fixtures.sh"
say "toolchain ready (cache: $AIPLATFORM_OLLAMA_CACHE)"
