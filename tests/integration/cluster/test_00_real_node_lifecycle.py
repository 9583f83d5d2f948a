"""The test cluster's real node changes host network state while it runs, and leaves the host as it
found it when it stops: links, addresses, routes, nftables tables, iptables chains, sysctls, mounts,
the kubelet's and containerd's fixed paths and cgroups (tests/services/host_state.py). A node whose
owner is killed leaves it to the next node's start, which restores it from the node's owner record.

These start clusters of their own, so they run first (the file name), before the session's cluster,
which has the node too: two real nodes cannot run at once on one host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.integration.real_node.conftest import namespace, tools_pod, wait_pod_ready
from tests.services import real_node
from tests.services.cluster import Cluster
from tests.services.host_state import FIXED_PATHS, HostState
from tests.services.process import ServiceError


def test_the_real_node_runs_a_pod_and_restores_the_host_when_it_stops(tmp_path):
    before = HostState.capture()

    with Cluster.start(tmp_path / "cluster", with_real_node=True) as cluster:
        node = cluster.node
        cluster.apply(namespace("lifecycle"), tools_pod("lifecycle", "lifecycle", node.images["tools"]))
        pod = wait_pod_ready(cluster, "lifecycle", "lifecycle")
        assert pod["spec"]["nodeName"] == real_node.NODE_NAME
        during = HostState.capture()
        # while it runs, the host carries the node's links, addresses, rules and cgroups
        assert {real_node.NODE_LINK, real_node.BRIDGE} <= during.links
        assert any(real_node.NODE_IP in address for address in during.addresses)
        assert "table ip kube-proxy" in during.nft_tables
        assert "table inet kube-network-policies" in during.nft_tables
        assert before.differences(during)
        assert real_node.OWNER_RECORD.exists()

    assert node.leftovers == []
    assert before.differences(HostState.capture()) == []
    assert not real_node.OWNER_RECORD.exists()


def _processes(carrying: bytes = b"", naming: str = "") -> list[int]:
    """The processes whose environment holds the entry carrying, or whose command line names naming."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if (carrying and carrying in environ) or (naming and naming.encode() in cmdline):
            found.append(int(pid))
    return found


def test_a_node_whose_owner_is_killed_is_restored_by_the_next_start():
    """A CI job's timeout kills the test process, not the node's processes (each runs in a session of
    its own): kubelet, containerd and the pods keep the host's links and rules. The next start finds the
    owner record, kills what names the dead node's directories and restores the host it recorded."""
    before = HostState.capture()
    owner = subprocess.Popen([sys.executable, "-m", "tests.services.cluster", "up", "--real-node"],
                             cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in owner.stdout:
            output.append(line)
            if "cluster ready" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    record = {}
    try:
        assert ready.wait(timeout=300) and owner.poll() is None, "".join(output)
        record = json.loads(real_node.OWNER_RECORD.read_text())
        assert record["pid"] == owner.pid
        # while its owner runs, no other start may take the node's links over
        with pytest.raises(ServiceError, match=f"another test cluster with a real node is running \\(pid {owner.pid}"):
            real_node.recover_abandoned_node()

        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        left = HostState.capture()
        assert {real_node.NODE_LINK, real_node.BRIDGE} <= left.links
        marker = f"{real_node.OWNER_ENV}={owner.pid}:{record['started']}".encode()
        # the node's processes and the cluster's (Flux, nginx, ...) outlive their owner
        assert _processes(naming=record["workdir"]) and len(_processes(carrying=marker)) > 5

        assert real_node.recover_abandoned_node() is True
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if record:
            shutil.rmtree(record["cluster_workdir"], ignore_errors=True)

    assert before.differences(HostState.capture()) == []
    assert _processes(carrying=marker) == []
    assert _processes(naming=record["workdir"]) == [] and _processes(naming=record["socket_dir"]) == []
    assert not real_node.OWNER_RECORD.exists()
    assert real_node.recover_abandoned_node() is False


def test_a_cluster_without_a_real_node_creates_no_host_path(tmp_path):
    """kube-controller-manager probes its flex volume directory at start, creating it if missing: the
    cluster points it into its own work directory, not at /usr/libexec/kubernetes."""
    before = {path for path in FIXED_PATHS if os.path.lexists(path)}

    with Cluster.start(tmp_path / "cluster") as cluster:
        assert (cluster.workdir / "flexvolume").is_dir()
        assert {path for path in FIXED_PATHS if os.path.lexists(path)} == before


def test_a_container_of_a_molecule_scenario_beside_the_node_is_not_host_state():
    """molecule runs beside the cluster session (make test): its containers, with the host's network
    or none, show on the host as one shm mount each in podman's storage, which the capture leaves out."""
    before = HostState.capture()
    name = "aipo-host-state-probe"
    started = subprocess.run(["podman", "run", "-d", "--name", name, "--network=none", "--systemd=always",
                              os.environ["MOLECULE_IMAGE"], "/sbin/init"], capture_output=True, text=True)
    try:
        assert started.returncode == 0, started.stderr
        container = started.stdout.strip()
        assert any(container in line for line in Path("/proc/self/mountinfo").read_text().splitlines())
        assert before.differences(HostState.capture()) == []
    finally:
        subprocess.run(["podman", "rm", "--force", "--time", "0", name], capture_output=True)
    assert before.differences(HostState.capture()) == []
