#!/usr/bin/env bash
# The molecule host: a Debian bookworm systemd image made by debootstrap and imported into a podman
# store that lives in the project's cache. podman is pointed at its own configuration through
# CONTAINERS_CONF / CONTAINERS_STORAGE_CONF, so the machine's /etc/containers is never edited.
set -euo pipefail
source "$(dirname "$0")/env.sh"

conf_dir=$(dirname "$CONTAINERS_CONF")
mkdir -p "$conf_dir" "$AIPLATFORM_OLLAMA_CACHE/podman/"{graph,run,tmp}

# crun fails on this cgroup layout and the default ulimits exceed the hard limit: runc + explicit ulimits
cat > "$CONTAINERS_CONF.new" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
tmp_dir = "$AIPLATFORM_OLLAMA_CACHE/podman/tmp"
CONF
cat > "$CONTAINERS_STORAGE_CONF.new" <<CONF
[storage]
driver = "vfs"
graphroot = "$AIPLATFORM_OLLAMA_CACHE/podman/graph"
runroot = "$AIPLATFORM_OLLAMA_CACHE/podman/run"
CONF
mv "$CONTAINERS_CONF.new" "$CONTAINERS_CONF"
mv "$CONTAINERS_STORAGE_CONF.new" "$CONTAINERS_STORAGE_CONF"

if podman image exists "$MOLECULE_IMAGE"; then exit 0; fi

echo "==> building $MOLECULE_IMAGE with debootstrap (about a minute)"
rootfs=$(mktemp -d "$AIPLATFORM_OLLAMA_CACHE/podman/rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase \
  --include=python3,python3-apt,systemd,systemd-sysv,procps,iproute2,kmod,util-linux \
  bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
chmod 0755 "$rootfs"  # mktemp made it 0700: no unprivileged service could enter /
tar -C "$rootfs" -c . | podman import - "$MOLECULE_IMAGE" >/dev/null
