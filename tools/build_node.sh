#!/usr/bin/env bash
# Build the test cluster's real node, once, into the project cache: kubelet and kube-proxy (from the
# control plane's Kubernetes wrapper module), containerd with its runc shim, the CNI plugins, CoreDNS,
# kube-network-policies (the NetworkPolicy enforcer) and the pause binary; then the images the node's
# pods run (tools/node_images.py), since this machine pulls from no image registry.
# Each group is skipped when its binaries report the pinned version. Idempotent; run by tools/setup.sh
# after tools/build_cluster.sh, whose Kubernetes wrapper module it reuses.
set -euo pipefail
source "$(dirname "$0")/env.sh"

say() { printf '==> %s\n' "$*"; }

BIN="$CLUSTER_BIN_DIR"
WORK="$AIPLATFORM_OLLAMA_CACHE/src/node"
mkdir -p "$BIN" "$WORK"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
GO_LINE="go $(go env GOVERSION | sed 's/^go//')"

have() { [ -x "$BIN/$1" ] && grep -qx "$2" "$BIN/.${1//\//_}.version" 2>/dev/null; }
stamp() { for b in "${@:2}"; do echo "$1" > "$BIN/.${b//\//_}.version"; done; }

# A wrapper module requiring exactly one module version, in $WORK/NAME.
wrapper() {
  local name=$1 module=$2 version=$3 dir="$WORK/$1"
  mkdir -p "$dir"
  if ! grep -q "^require $module $version\$" "$dir/go.mod" 2>/dev/null; then
    printf 'module aiplatform.test/%s\n%s\nrequire %s %s\n' "$name" "$GO_LINE" "$module" "$version" > "$dir/go.mod"
    rm -f "$dir/go.sum"
    (cd "$dir" && go mod download "$module@$version" && go get "$module@$version" >/dev/null)
  fi
  echo "$dir"
}

build_kubelet() {
  have kubelet "$KUBERNETES_VERSION" && have kube-proxy "$KUBERNETES_VERSION" && return
  local dir="$AIPLATFORM_OLLAMA_CACHE/src/cluster/kubernetes" flags="" major minor
  [ -f "$dir/go.mod" ] || { echo "no Kubernetes wrapper module in $dir: run tools/build_cluster.sh first" >&2; exit 1; }
  say "building kubelet, kube-proxy $KUBERNETES_VERSION"
  major=$(echo "${KUBERNETES_VERSION#v}" | cut -d. -f1); minor=$(echo "${KUBERNETES_VERSION#v}" | cut -d. -f2)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  done
  (cd "$dir" && go build -o "$BIN/" -ldflags "-s -w $flags" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  stamp "$KUBERNETES_VERSION" kubelet kube-proxy
}

build_containerd() {
  have containerd "$CONTAINERD_VERSION" && return
  say "building containerd $CONTAINERD_VERSION (~3 min on 2 cores)"
  local dir m=github.com/containerd/containerd/v2
  dir=$(wrapper containerd "$m" "$CONTAINERD_VERSION")
  (cd "$dir" && go build -tags no_btrfs -o "$BIN/" -ldflags "-s -w -X $m/version.Version=$CONTAINERD_VERSION" \
    "$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2")
  stamp "$CONTAINERD_VERSION" containerd ctr containerd-shim-runc-v2
}

build_cni() {
  have cni/bridge "$CNI_PLUGINS_VERSION" && return
  say "building the CNI plugins $CNI_PLUGINS_VERSION"
  local dir p=github.com/containernetworking/plugins/plugins
  dir=$(wrapper cni github.com/containernetworking/plugins "$CNI_PLUGINS_VERSION")
  mkdir -p "$BIN/cni"
  (cd "$dir" && go build -o "$BIN/cni/" -ldflags "-s -w" "$p/main/bridge" "$p/ipam/host-local" "$p/main/loopback")
  stamp "$CNI_PLUGINS_VERSION" cni/bridge
}

build_coredns() {
  have coredns "$COREDNS_VERSION" && return
  say "building CoreDNS $COREDNS_VERSION (~4 min on 2 cores)"
  local dir
  dir=$(wrapper coredns github.com/coredns/coredns "$COREDNS_VERSION")
  (cd "$dir" && CGO_ENABLED=0 go build -o "$BIN/coredns" -ldflags "-s -w" github.com/coredns/coredns)
  stamp "$COREDNS_VERSION" coredns
}

# kube-network-policies queues the packets a policy selects to itself with nft's `queue` expression,
# which needs CONFIG_NFT_QUEUE. Kernels without it (this machine kind's among them) reject every rule
# set it writes, and nothing is enforced. tools/knp_nfqueue_xt.py swaps that expression for the
# xtables NFQUEUE target through nft_compat, which such kernels do have; the verdicts are the same.
build_network_policies() {
  local want="$KNP_VERSION+nfqueue-xt"
  have kube-network-policies "$want" && return
  say "building kube-network-policies $KNP_VERSION (patched for kernels without nft queue; ~3 min)"
  local dir src
  dir=$(wrapper knp sigs.k8s.io/kube-network-policies "$KNP_VERSION")
  src=$(cd "$dir" && go list -m -f '{{.Dir}}' "sigs.k8s.io/kube-network-policies")
  rm -rf "$WORK/knp-src"; cp -r "$src" "$WORK/knp-src"; chmod -R u+w "$WORK/knp-src"
  python3 "$PROJECT_ROOT/tools/knp_nfqueue_xt.py" "$WORK/knp-src/pkg/networkpolicy/controller.go"
  (cd "$dir" && go mod edit -replace "sigs.k8s.io/kube-network-policies=$WORK/knp-src" &&
    CGO_ENABLED=0 go build -o "$BIN/kube-network-policies" -ldflags "-s -w" sigs.k8s.io/kube-network-policies/cmd)
  stamp "$want" kube-network-policies
}

# The sandbox ("pause") container: Kubernetes' own pause.c, linked statically.
build_pause() {
  have pause "$KUBERNETES_VERSION" && return
  local src
  src=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  gcc -static -O2 -DVERSION="$KUBERNETES_VERSION" -o "$BIN/pause" "$src/build/pause/linux/pause.c"
  stamp "$KUBERNETES_VERSION" pause
}

# busybox, statically linked, from Debian's archive (downloaded, never installed on this machine):
# the shell and tools of the node's images.
fetch_busybox() {
  have busybox "$BUSYBOX_DEB_VERSION" && return
  say "fetching Debian's busybox-static $BUSYBOX_DEB_VERSION"
  local dl="$WORK/busybox"
  rm -rf "$dl"; mkdir -p "$dl"
  # as root, apt hands the download to its _apt user, which cannot write this directory
  (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "busybox-static=$BUSYBOX_DEB_VERSION" >/dev/null &&
    dpkg-deb -x busybox-static_*.deb root)
  install -m 0755 "$dl/root/bin/busybox" "$BIN/busybox"
  stamp "$BUSYBOX_DEB_VERSION" busybox
}

build_images() { python3 "$PROJECT_ROOT/tools/node_images.py"; }

# tools/build_node.sh [STEP...]: only the steps named (e.g. build_coredns), else all of them in order
steps=("$@")
((${#steps[@]})) || steps=(build_kubelet build_containerd build_cni build_coredns build_network_policies
                           build_pause fetch_busybox build_images)
for step in "${steps[@]}"; do "$step"; done
