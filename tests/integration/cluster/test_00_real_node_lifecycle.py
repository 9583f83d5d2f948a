"""The test cluster's real node changes host network state while it runs, and leaves the host as it
found it when it stops: links, addresses, routes, nftables tables, iptables chains, sysctls, mounts,
the kubelet's and containerd's fixed paths and cgroups (tests/services/host_state.py).

It starts a cluster of its own, so it runs first (the file name), before the session's cluster,
which has the node too: two real nodes cannot run at once on one host.
"""

from __future__ import annotations

from tests.integration.real_node.conftest import namespace, tools_pod, wait_pod_ready
from tests.services import real_node
from tests.services.cluster import Cluster
from tests.services.host_state import HostState


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

    assert node.leftovers == []
    assert before.differences(HostState.capture()) == []
