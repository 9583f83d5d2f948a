"""The preflight's node check on the test cluster: the prod inventory's requests against the nodes the
deployment may use, before anything is applied. A node of its own, selected by a label, carries a
measured memory bandwidth for the decode estimate; it is removed afterwards."""

from __future__ import annotations

import pytest

from tests.services.cluster import Node

POOL = {"aiplatform.test/pool": "preflight"}


@pytest.fixture
def inference_node(cluster):
    # prod's two 52Gi replicas share the ReadWriteOnce claim's node, with room for a rolling update's third
    node = Node("kwok-preflight-node", cpu="16", memory="160Gi", labels=POOL).manifest()
    # 20 GB/s, as node_tuning annotates what it measured
    node["metadata"]["annotations"]["node.aiplatform.io/memory-bandwidth"] = "20000000000"
    cluster.apply(node)
    yield node["metadata"]["name"]
    cluster.delete("v1", "Node", node["metadata"]["name"])


def test_nodes_with_room_pass_and_get_a_decode_estimate(run_on_cluster, inference_node):
    run = run_on_cluster("preflight.yml", {"ollama_flux_node_selector": POOL})
    assert run.returncode == 0, run.output[-4000:]
    assert "ok: 1 of 1 schedulable node(s) can run" in run.said and inference_node in run.said
    assert f"on {inference_node} decodes about" in run.said and "20.0 GB/s measured memory bandwidth" in run.said
    assert "ok: 2 replica(s) x 52.0 GiB each" in run.said
    # (the callback writes the apostrophe of "pods' requests" doubled, as YAML quotes it)
    assert "can take 3 Ollama pod(s) after the other pods" in run.said
    assert f"({inference_node}: 3); room for a surge pod" in run.said, run.said[-3000:]
    assert run.recap["changed"] == 0


def test_requests_no_node_can_hold_stop_the_deploy_before_anything_is_applied(cluster, run_on_cluster,
                                                                                 inference_node):
    namespace = "ollama-preflight"
    run = run_on_cluster("deploy.yml", {"ollama_flux_node_selector": POOL, "ollama_flux_memory_limit": "192Gi",
                                        "ollama_flux_memory_request": "192Gi", "ollama_flux_namespace": namespace,
                                        "ollama_flux_namespace_create": True})
    assert run.returncode != 0
    said = run.said
    assert "no schedulable node has the allocatable resources the pod needs" in said, run.output[-4000:]
    assert "ollama_flux_memory_request 192Gi" in said and f"{inference_node} (160.0 GiB, 16000m CPU)" in said
    assert "PLAY [Deploy Ollama through Flux]" not in run.output
    assert cluster.find("v1", "Namespace", namespace) is None


def test_a_selector_no_node_matches_is_named(run_on_cluster):
    run = run_on_cluster("preflight.yml", {"ollama_flux_node_selector": {"aiplatform.test/pool": "nowhere"}})
    assert run.returncode != 0
    assert "no schedulable node matches the deployment's node selector (nodes seen: none)" in run.said, \
        run.output[-4000:]
