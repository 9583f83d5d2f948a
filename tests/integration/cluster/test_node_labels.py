"""node_tuning's node labels on the test cluster's Nodes: applied once, then no change; a Node that
does not exist is refused with the names the cluster has. Only the labels area runs (the profile
it needs only reads /proc and /sys): nothing on this machine is tuned."""

from __future__ import annotations

LABELS_ONLY = ("--tags", "node_tuning_labels")
PREFIX = "node.aiplatform.io"


def labels_vars(node: str, tmp_path) -> dict:
    # the facts file goes to a directory of the test's own, never to this machine's /etc
    return {"node_tuning_report_only": False, "node_tuning_labels_enabled": True, "node_tuning_k8s_node_name": node,
            "ansible_become": False, "node_tuning_facts_dir": str(tmp_path / "facts.d")}


def test_labels_land_on_the_node_and_a_second_run_changes_nothing(cluster, run_on_cluster, tmp_path):
    first = run_on_cluster("tune_nodes.yml", labels_vars("kwok-node-0", tmp_path), *LABELS_ONLY)
    # the labels, and the local facts directory and file in the test's own directory
    assert first.returncode == 0 and first.recap["changed"] == 3, first.output[-4000:]
    assert (tmp_path / "facts.d" / "ollama_node.fact").is_file()
    labels = cluster.get("v1", "Node", "kwok-node-0")["metadata"]["labels"]
    assert labels[f"{PREFIX}/tuned"] == "true" and f"{PREFIX}/avx2" in labels and f"{PREFIX}/numa-nodes" in labels

    again = run_on_cluster("tune_nodes.yml", labels_vars("kwok-node-0", tmp_path), *LABELS_ONLY)
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-4000:]


def test_a_node_that_does_not_exist_is_named_with_the_nodes_there_are(run_on_cluster, tmp_path):
    run = run_on_cluster("tune_nodes.yml", labels_vars("inference-7", tmp_path), *LABELS_ONLY)
    assert run.returncode != 0
    assert "Node inference-7 (node_tuning_k8s_node_name) does not exist in the cluster; it has " \
           "aiplatform-real-node, kwok-failing-node, kwok-node-0, kwok-node-1" in run.said, run.output[-4000:]
