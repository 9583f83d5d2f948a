"""The memory bandwidth from node to report in apply mode: node_tuning measures it on this machine and
annotates the Node (once: a second run changes nothing), and inference_check finds the node the Ollama
pod runs on, reads the annotation and reports the real Ollama's decode speed against that roofline.

kwok runs no containers: the pod is a stand-in that kwok marks Running on kwok-node-1, while the
inference is the session's real Ollama, as for the other apply-mode tests."""

from __future__ import annotations

import re

import pytest

NODE = "kwok-node-1"
NAMESPACE = "roofline-node"
ANNOTATION = "node.aiplatform.io/memory-bandwidth"
VERIFY = {"ollama_flux_namespace": NAMESPACE, "inference_check_level": "generate", "inference_check_concurrency": 0}


@pytest.fixture
def ollama_pod(cluster):
    """A pod with the chart's labels, Running on NODE; the node without the labels and annotation after."""
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    cluster.apply({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ollama-0", "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/name": "ollama", "app.kubernetes.io/instance": "ollama"}},
        "spec": {"nodeName": NODE, "containers": [{"name": "ollama", "image": "ollama/ollama:0.18.3"}]},
    })
    cluster.wait_for("the stand-in Ollama pod Running", lambda: cluster.get(
        "v1", "Pod", "ollama-0", NAMESPACE).get("status", {}).get("phase") == "Running")
    yield
    cluster.delete("v1", "Namespace", NAMESPACE)
    labels = cluster.get("v1", "Node", NODE)["metadata"].get("labels", {})
    cluster.request("PATCH", f"/api/v1/nodes/{NODE}", {"metadata": {
        "annotations": {ANNOTATION: None},
        "labels": {key: None for key in labels if key.startswith("node.aiplatform.io/")}}},
        "application/merge-patch+json")


def test_bandwidth_measured_on_the_node_is_the_roofline_of_its_pod(cluster, run_on_cluster, ollama_pod, tmp_path):
    before = run_on_cluster("verify.yml", VERIFY)
    assert before.returncode == 0, before.output[-4000:]
    assert (f"decode roofline not reported: the memory bandwidth is unknown (node {NODE} has no annotation "
            f"{ANNOTATION})") in before.said, before.output[-4000:]

    tune = {"node_tuning_report_only": False, "node_tuning_labels_enabled": True, "node_tuning_k8s_node_name": NODE,
            "ansible_become": False, "node_tuning_facts_dir": str(tmp_path / "facts.d")}
    first = run_on_cluster("tune_nodes.yml", tune, "--tags", "node_tuning_labels")
    assert first.returncode == 0, first.output[-4000:]
    annotated = cluster.get("v1", "Node", NODE)["metadata"]["annotations"][ANNOTATION]
    assert annotated.isdigit() and int(annotated) > 0
    # measured once: the second run reuses the recorded measurement, so the annotation stays as it was
    again = run_on_cluster("tune_nodes.yml", tune, "--tags", "node_tuning_labels")
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-4000:]
    assert cluster.get("v1", "Node", NODE)["metadata"]["annotations"][ANNOTATION] == annotated
    assert "memory bandwidth" in again.said and "reused: measured earlier, read from" in again.said

    after = run_on_cluster("verify.yml", VERIFY)
    assert after.returncode == 0, after.output[-4000:]
    line = re.search(r"direct: decode ([\d.]+) tok/s is ([\d.]+) % of the roofline ([\d.]+) tok/s \(([\d.]+) GB/s / "
                     rf"[\d.]+ MB read per token\); bandwidth \"(\d+)\" from the annotation {ANNOTATION} of node "
                     rf"{NODE};", after.said)
    assert line, after.output[-4000:]
    assert line.group(5) == annotated and float(line.group(4)) == round(int(annotated) / 1e9, 1)
