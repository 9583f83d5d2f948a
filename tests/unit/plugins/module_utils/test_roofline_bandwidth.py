"""Where inference_check's roofline bandwidth comes from, and each reason it is unknown, from the shapes
kubernetes.core.k8s_info returns (resources on success, msg on failure, a skipped result when not run)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.roofline_bandwidth import FilterModule
from ansible_collections.aiplatform.ollama.plugins.module_utils.roofline_bandwidth import roofline_bandwidth

ANNOTATION = "node.aiplatform.io/memory-bandwidth"
SELECTOR = ["app.kubernetes.io/name=ollama"]
PODS = {"resources": [{"metadata": {"name": "ollama-0"}, "spec": {"nodeName": "node-a"}}]}
SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}


def node(annotations: dict | None) -> dict:
    return {"resources": [{"metadata": {"name": "node-a", "annotations": annotations}}]}


def bandwidth(configured="", mode="apply", pods=None, node_read=None):
    return roofline_bandwidth(configured, mode=mode, pods=pods, node=node_read, annotation=ANNOTATION,
                              namespace="ollama", selector=SELECTOR)


def test_the_configured_bandwidth_wins_and_nothing_is_read():
    result = bandwidth(configured=25_000_000_000)
    assert result == {"bandwidth": "25000000000", "origin": "inference_check_memory_bandwidth", "unknown": "",
                      "lookup": False, "pod_node": ""}


def test_the_node_annotation_in_apply_mode():
    result = bandwidth(pods=PODS, node_read=node({ANNOTATION: "19.5e9"}))
    assert result["bandwidth"] == "19.5e9"
    assert result["origin"] == f"the annotation {ANNOTATION} of node node-a"
    assert result["lookup"] is True


def test_the_pod_node_is_known_once_the_pods_are_read_before_the_node_is():
    assert bandwidth()["pod_node"] == ""
    assert bandwidth(pods=PODS)["pod_node"] == "node-a"


def test_the_first_pod_with_a_node_is_read():
    pods = {"resources": [{"spec": {}}, {"spec": {"nodeName": "node-b"}}]}
    assert bandwidth(pods=pods)["pod_node"] == "node-b"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"mode": "gitops"}, "ollama_flux_mode is gitops, so no cluster is read"),
    ({"pods": {"msg": "Failed to get client due to HTTPSConnectionPool"}},
     "the cluster could not be read: Failed to get client due to HTTPSConnectionPool"),
    ({"pods": SKIPPED}, "the cluster could not be read: no answer"),
    ({"pods": {"resources": []}}, "no running pod with labels app.kubernetes.io/name=ollama in namespace ollama"),
    ({"pods": PODS, "node_read": {"msg": "nodes is forbidden"}}, "node node-a could not be read: nodes is forbidden"),
    ({"pods": PODS, "node_read": {"resources": []}}, "node node-a was not found"),
    ({"pods": PODS, "node_read": node(None)}, f"node node-a has no annotation {ANNOTATION}"),
    ({"pods": PODS, "node_read": node({ANNOTATION: ""})}, f"node node-a has no annotation {ANNOTATION}"),
])
def test_each_reason_the_bandwidth_is_unknown(kwargs, reason):
    result = bandwidth(**kwargs)
    assert (result["bandwidth"], result["origin"], result["unknown"]) == ("", "", reason)


def test_the_filter_needs_the_annotation():
    with pytest.raises(AnsibleFilterError, match="annotation is required"):
        FilterModule().filters()["roofline_bandwidth"]("", "apply")
