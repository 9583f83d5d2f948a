#!/usr/bin/env bash
# Build the test cluster's binaries from their Go modules, once, into the project cache:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and the three Flux controllers,
# plus the Flux CRDs and kwok's stage definitions that ship inside those modules.
# Each group is skipped when its binaries report the pinned version. Idempotent; run by tools/setup.sh.
set -euo pipefail
source "$(dirname "$0")/env.sh"

say() { printf '==> %s\n' "$*"; }

BIN="$CLUSTER_BIN_DIR"
WORK="$AIPLATFORM_OLLAMA_CACHE/src/cluster"
mkdir -p "$BIN" "$WORK" "$CLUSTER_ASSETS_DIR"
# the modules and toolchain are pinned; never let `go` reach for a newer toolchain or rewrite go.sum silently
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

# Where a module version lies in the module cache (FIELD Dir: its files, GoMod: its go.mod),
# downloading it if needed.
module_path() {
  go mod download -json "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
# the `go` line of the wrapper modules: the toolchain on this machine
GO_LINE="go $(go env GOVERSION | sed 's/^go//')"

version_ldflags() {
  local v="$1" major minor flags=""
  major=$(echo "${v#v}" | cut -d. -f1); minor=$(echo "${v#v}" | cut -d. -f2)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  done
  echo "$flags"
}

have() { [ -x "$BIN/$1" ] && grep -qx "$2" "$BIN/.$1.version" 2>/dev/null; }
stamp() { for b in "${@:2}"; do echo "$1" > "$BIN/.$b.version"; done; }

# k8s.io/kubernetes replaces its staging modules with local paths, so `go install` refuses it:
# a wrapper module requires it and points each staging module at its published v0.X.Y twin.
kubernetes_wrapper() {
  local dir="$WORK/kubernetes" staging="v0.${KUBERNETES_VERSION#v1.}"
  mkdir -p "$dir"
  if [ ! -f "$dir/go.mod" ]; then
    local gomod
    gomod=$(module_path GoMod "k8s.io/kubernetes@$KUBERNETES_VERSION")
    {
      echo "module aiplatform.test/kubernetes"
      echo "$GO_LINE"
      echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
      sed -n '/^replace (/,/^)/p' "$gomod" | awk '$2 == "=>" {print "replace " $1 " => " $1 " '"$staging"'"}'
    } > "$dir/go.mod.tmp"
    mv "$dir/go.mod.tmp" "$dir/go.mod"
  fi
  echo "$dir"
}

build_kubernetes() {
  have kube-apiserver "$KUBERNETES_VERSION" && have kube-controller-manager "$KUBERNETES_VERSION" &&
    have kube-scheduler "$KUBERNETES_VERSION" && have kubectl "$KUBERNETES_VERSION" && return
  say "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBERNETES_VERSION (~9 min on 2 cores)"
  local dir
  dir=$(kubernetes_wrapper)
  (cd "$dir" && go build -o "$BIN/" -ldflags "-s -w $(version_ldflags "$KUBERNETES_VERSION")" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  stamp "$KUBERNETES_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
  have etcd "$ETCD_VERSION" && return
  say "building etcd $ETCD_VERSION"
  local dir="$WORK/etcd"
  mkdir -p "$dir"
  cat > "$dir/go.mod" <<EOF
module aiplatform.test/etcd
$GO_LINE
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
replace go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
replace go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
replace go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
replace go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
EOF
  (cd "$dir" && go build -o "$BIN/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3)
  stamp "$ETCD_VERSION" etcd
}

# kwok shares the Kubernetes wrapper's versions (and so its build cache).
build_kwok() {
  have kwok "$KWOK_VERSION" && return
  say "building kwok $KWOK_VERSION"
  local dir="$WORK/kwok" kube
  kube=$(kubernetes_wrapper)
  mkdir -p "$dir"
  sed 's#^module .*#module aiplatform.test/kwok#' "$kube/go.mod" > "$dir/go.mod"
  cp "$kube/go.sum" "$dir/go.sum" 2>/dev/null || true
  (cd "$dir" && go get "sigs.k8s.io/kwok@$KWOK_VERSION" >/dev/null &&
    go build -o "$BIN/kwok" -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok)
  # kwok has no default stages: nodes Ready with heartbeats, pods Ready, Job pods Succeeded, deletes honoured
  local src
  src=$(module_path Dir "sigs.k8s.io/kwok@$KWOK_VERSION")
  for stage in node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready \
               pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"  # the files have no document markers of their own
    cat "$src/kustomize/stage/$stage.yaml"
  done > "$CLUSTER_ASSETS_DIR/kwok-stages.yaml.tmp"
  mv "$CLUSTER_ASSETS_DIR/kwok-stages.yaml.tmp" "$CLUSTER_ASSETS_DIR/kwok-stages.yaml"
  stamp "$KWOK_VERSION" kwok
}

build_flux() {
  have source-controller "$FLUX_SOURCE_VERSION" && have kustomize-controller "$FLUX_KUSTOMIZE_VERSION" &&
    have helm-controller "$FLUX_HELM_VERSION" && [ -d "$CLUSTER_ASSETS_DIR/flux-crds" ] && return
  say "building Flux source-controller $FLUX_SOURCE_VERSION, kustomize-controller $FLUX_KUSTOMIZE_VERSION, helm-controller $FLUX_HELM_VERSION (~5 min)"
  local dir="$WORK/flux"
  mkdir -p "$dir"
  # the controllers' own replace lines, plus pkg/artifact pinned to a version the proxy serves whole
  cat > "$dir/go.mod" <<EOF
module aiplatform.test/flux
$GO_LINE
require (
	github.com/fluxcd/source-controller $FLUX_SOURCE_VERSION
	github.com/fluxcd/source-controller/api $FLUX_SOURCE_VERSION
	github.com/fluxcd/kustomize-controller $FLUX_KUSTOMIZE_VERSION
	github.com/fluxcd/kustomize-controller/api $FLUX_KUSTOMIZE_VERSION
	github.com/fluxcd/helm-controller $FLUX_HELM_VERSION
	github.com/fluxcd/helm-controller/api $FLUX_HELM_VERSION
)
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20231025023718-d50d2fec9c98
replace sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1
replace sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.21.1
replace gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1
replace github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact v0.18.1
EOF
  (cd "$dir" && go build -o "$BIN/" -ldflags "-s -w" github.com/fluxcd/source-controller \
    github.com/fluxcd/kustomize-controller github.com/fluxcd/helm-controller)
  stamp "$FLUX_SOURCE_VERSION" source-controller
  stamp "$FLUX_KUSTOMIZE_VERSION" kustomize-controller
  stamp "$FLUX_HELM_VERSION" helm-controller
  # the CRDs of exactly the controllers built
  local crds="$CLUSTER_ASSETS_DIR/flux-crds.tmp"
  rm -rf "$crds"; mkdir -p "$crds"
  for m in "source-controller@$FLUX_SOURCE_VERSION" "kustomize-controller@$FLUX_KUSTOMIZE_VERSION" \
           "helm-controller@$FLUX_HELM_VERSION"; do
    cp "$(module_path Dir "github.com/fluxcd/$m")"/config/crd/bases/*.yaml "$crds/"
  done
  chmod -R u+w "$crds"
  rm -rf "$CLUSTER_ASSETS_DIR/flux-crds"; mv "$crds" "$CLUSTER_ASSETS_DIR/flux-crds"
}

build_etcd
build_kubernetes
build_kwok
build_flux
