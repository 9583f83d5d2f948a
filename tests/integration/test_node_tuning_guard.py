"""node_tuning refuses the static CPU manager for an Ollama pod it could not pin, before any change.

Run in check mode and limited to the kubelet area, so that nothing on this machine could change even
if the refusal were missing."""

from __future__ import annotations

from tests.playbook import run_playbook

BURSTABLE = {"node_tuning_report_only": False, "node_tuning_kubelet_cpu_manager": True, "ansible_become": False,
             "ollama_flux_cpu_request": "500m", "ollama_flux_cpu_limit": "2000m",
             "ollama_flux_memory_request": "2Gi", "ollama_flux_memory_limit": "4Gi"}


def test_static_cpu_manager_is_refused_for_a_burstable_ollama_pod(work_tree_collections):
    run = run_playbook(work_tree_collections, "tune_nodes.yml", "local", BURSTABLE, "--check",
                       "--tags", "node_tuning_kubelet")
    said = run.said
    assert run.returncode != 0 and run.recap["changed"] == 0
    assert "node_tuning_kubelet_cpu_manager is true, but the Ollama pod would not be Guaranteed with whole " \
           "CPUs: CPU request 500m / limit 2000m, memory request 2Gi / limit 4Gi" in said, run.output[-3000:]
    assert "Profile the node" not in run.output  # refused before anything else ran
