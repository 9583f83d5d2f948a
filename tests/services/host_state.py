"""What a real Kubernetes node changes on the machine it runs on, captured before and compared after.

The test cluster's real node (real_node.py) is the one service allowed to change host network state
while it runs: links and addresses, routes, nftables tables, the kubelet's iptables chains, network
sysctls such as ip_forward, mounts under its work directory, a few fixed paths of containerd and the
kubelet, and the kubelet's cgroups. It must leave all of it as it found it. `HostState.capture()`
reads each of these; `before.differences(after)` names what differs, and is what the node's stop
checks and a test asserts is empty. The mounts in podman's storage are podman's (the containers of a
molecule scenario, which may run beside the node), not the node's: they are left out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path

# Paths the kubelet, containerd and the CNI plugins use whatever their configuration says.
FIXED_PATHS = ("/var/lib/kubelet", "/var/lib/cni", "/var/log/containers", "/var/log/pods", "/run/containerd",
               "/var/run/netns", "/run/netns", "/etc/cni", "/opt/cni", "/usr/libexec/kubernetes", "/opt/containerd")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# sysctls that move by themselves (counters, entropy, the last PID) or belong to one link
_VOLATILE_SYSCTL = re.compile(
    r"^(kernel\.random\.|kernel\.ns_last_pid|kernel\.pty\.nr|kernel\.tainted|fs\.(dentry-state|inode-|file-nr|aio-nr"
    r"|quota\.)|net\.netfilter\.nf_conntrack_count|vm\.(stat_refresh|drop_caches)|net\.ipv[46]\.(conf|neigh)"
    r"\.(?!all\b|default\b)[^.]+\.|net\.ipv6\.conf\.(all|default)\.stable_secret|kernel\.(sched_|perf_))")


def _lines(argv: list[str]) -> list[str]:
    # a command that hangs fails the capture with its name (TimeoutExpired) rather than the test run
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return result.stdout.splitlines() if result.returncode == 0 else []


def sysctls() -> dict[str, str]:
    """Every readable sysctl but the volatile ones."""
    values = {}
    for line in _lines(["sysctl", "-a"]):
        key, sep, value = line.partition(" = ")
        if sep and not _VOLATILE_SYSCTL.match(key):
            values[key] = value
    return values


def iptables_chains() -> set[str]:
    """family/table/chain of every iptables chain, and family/table/rule of every rule."""
    entries = set()
    for family, save in (("ipv4", "iptables-save"), ("ipv6", "ip6tables-save")):
        table = ""
        for line in _lines([save]):
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                entries.add(f"{family}/{table}/chain {line[1:].split()[0]}")
            elif line.startswith("-A"):
                entries.add(f"{family}/{table}/rule {line}")
    return entries


def links() -> set[str]:
    """The names of the host's network links (a veth without its @peer)."""
    return {line.split(":")[1].strip().split("@")[0] for line in _lines(["ip", "-o", "link", "show"])}


def podman_storage() -> tuple[str, ...]:
    """podman's graph and run roots, as podman resolves them (none without podman): the shm mount of
    each running container lives there, and a molecule scenario may run beside the node."""
    roots = _lines(["podman", "info", "--format", "{{.Store.GraphRoot}}\n{{.Store.RunRoot}}"]) if shutil.which(
        "podman") else []
    return tuple(root.rstrip("/") + "/" for root in roots if root.strip())


def mounts() -> list[str]:
    """Every mount point of this process's mount namespace but those in podman's storage."""
    podman = podman_storage()
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [point for point in points if not point.startswith(podman)]


def cgroups() -> set[str]:
    """The top-level cgroup directories of every v1 controller (where the kubelet puts kubepods)."""
    found = set()
    if CGROUP_ROOT.is_dir():
        for controller in CGROUP_ROOT.iterdir():
            if controller.is_dir() and not controller.is_symlink():
                found.update(f"{controller.name}/{child.name}" for child in controller.iterdir() if child.is_dir())
    return found


@dataclass(frozen=True)
class HostState:
    links: frozenset
    addresses: frozenset
    routes: frozenset
    nft_tables: frozenset
    iptables: frozenset
    mounts: frozenset
    paths: frozenset
    cgroups: frozenset
    sysctls: tuple

    @classmethod
    def capture(cls) -> HostState:
        return cls(
            links=frozenset(links()),
            addresses=frozenset(" ".join(line.split()[1:4]) for line in _lines(["ip", "-o", "addr", "show"])),
            routes=frozenset(_lines(["ip", "route", "show", "table", "all"])),
            nft_tables=frozenset(_lines(["nft", "list", "tables"])),
            iptables=frozenset(iptables_chains()),
            mounts=frozenset(mounts()),
            paths=frozenset(path for path in FIXED_PATHS if os.path.lexists(path)),
            cgroups=frozenset(cgroups()),
            sysctls=tuple(sorted(sysctls().items())),
        )

    def to_json(self) -> dict:
        return {item.name: sorted(getattr(self, item.name)) for item in fields(self)}

    @classmethod
    def from_json(cls, data: dict) -> HostState:
        return cls(**{item.name: tuple(tuple(pair) for pair in data[item.name]) if item.name == "sysctls"
                      else frozenset(data[item.name]) for item in fields(cls)})

    def differences(self, after: HostState) -> list[str]:
        """What after has that self had not ('+ ...') and the reverse ('- ...'), per kind."""
        found = []
        for item in fields(self):
            before, now = set(getattr(self, item.name)), set(getattr(after, item.name))
            found += [f"{item.name}: + {entry}" for entry in sorted(now - before, key=str)]
            found += [f"{item.name}: - {entry}" for entry in sorted(before - now, key=str)]
        return found

    def changed_sysctls(self, now: dict[str, str]) -> dict[str, str]:
        """key -> the value it had before, for every sysctl that now (sysctls()) holds with another value."""
        return {key: value for key, value in self.sysctls if key in now and now[key] != value}
