"""node_tuning refuses the static CPU manager for an Ollama pod it could not pin, before any change.

Run in check mode and limited to the kubelet area, with the kubelet drop-in and facts directories in the
test's own directory, so that nothing on this machine could change even if the refusal were missing."""

from __future__ import annotations

import pytest
import yaml

from tests.playbook import PROJECT_ROOT, run_playbook

FLUX_DEFAULTS = yaml.safe_load((PROJECT_ROOT / "roles" / "ollama_flux" / "defaults" / "main.yml").read_text())
CPU_MANAGER_ON = {"node_tuning_report_only": False, "node_tuning_kubelet_cpu_manager": True, "ansible_become": False,
                  "node_tuning_measure_bandwidth": False}
BURSTABLE = {**CPU_MANAGER_ON, "ollama_flux_cpu_request": "500m", "ollama_flux_cpu_limit": "2000m",
             "ollama_flux_memory_request": "2Gi", "ollama_flux_memory_limit": "4Gi"}
REFUSED = "node_tuning_kubelet_cpu_manager is true, but the Ollama pod would not be Guaranteed with whole CPUs"
FIX = ("Set ollama_flux_cpu_request equal to ollama_flux_cpu_limit, a whole number of CPUs, and "
       "ollama_flux_memory_request equal to ollama_flux_memory_limit")
# the first task after the guard: in the output only when the guard let the play go on
PROFILE_TASK = "Read CPU, NUMA, memory, swap and virtualization facts"


def tune_kubelet(collections, tmp_path, extra_vars: dict):
    private_dirs = {"node_tuning_kubelet_config_dir": str(tmp_path / "kubelet.conf.d"),
                    "node_tuning_facts_dir": str(tmp_path / "facts.d"),
                    "node_tuning_kubelet_state_dir": str(tmp_path / "kubelet")}
    return run_playbook(collections, "tune_nodes.yml", "local", {**private_dirs, **extra_vars}, "--check",
                        "--tags", "node_tuning_kubelet")


def test_static_cpu_manager_is_refused_for_a_burstable_ollama_pod(work_tree_collections, tmp_path):
    run = tune_kubelet(work_tree_collections, tmp_path, BURSTABLE)
    said = run.said
    assert run.returncode != 0 and run.recap["changed"] == 0
    assert f"{REFUSED}: CPU request 500m / limit 2000m, memory request 2Gi / limit 4Gi (ollama_flux_*)." in said, \
        run.output[-3000:]
    assert FIX in said
    assert PROFILE_TASK not in run.output  # refused before anything else ran


def test_without_the_ollama_flux_sizes_the_pod_is_judged_by_ollama_flux_defaults(work_tree_collections, tmp_path):
    """node_tuning run on its own: the pod ollama_flux would deploy with its defaults is Burstable."""
    defaults = [FLUX_DEFAULTS[f"ollama_flux_{name}"] for name in
                ("cpu_request", "cpu_limit", "memory_request", "memory_limit")]
    assert defaults[0] != defaults[1], "ollama_flux's defaults became Guaranteed: this test needs new sizes"

    run = tune_kubelet(work_tree_collections, tmp_path, CPU_MANAGER_ON)
    said = run.said
    assert run.returncode != 0 and run.recap["changed"] == 0, run.output[-3000:]
    assert (f"{REFUSED}: CPU request {defaults[0]} / limit {defaults[1]}, memory request {defaults[2]} / limit "
            f"{defaults[3]} (ollama_flux_*: ollama_flux_cpu_request, ollama_flux_cpu_limit, "
            "ollama_flux_memory_request, ollama_flux_memory_limit not set for this host, so the ollama_flux role "
            "defaults, which the pod is deployed with).") in said, run.output[-3000:]
    assert FIX in said and "or set node_tuning_kubelet_cpu_manager: false" in said
    assert PROFILE_TASK not in run.output


@pytest.mark.parametrize("sizes", [
    pytest.param({"ollama_flux_cpu_request": "2", "ollama_flux_cpu_limit": "2",
                  "ollama_flux_memory_request": "4Gi", "ollama_flux_memory_limit": "4Gi"}, id="same-strings"),
    # equal quantities written differently: compared as numbers, not as strings
    pytest.param({"ollama_flux_cpu_request": "1", "ollama_flux_cpu_limit": "1000m",
                  "ollama_flux_memory_request": "2048Mi", "ollama_flux_memory_limit": "2Gi"}, id="1-vs-1000m"),
])
def test_static_cpu_manager_is_allowed_for_a_guaranteed_ollama_pod(work_tree_collections, tmp_path, sizes):
    run = tune_kubelet(work_tree_collections, tmp_path, {**CPU_MANAGER_ON, **sizes})
    assert REFUSED not in run.said, run.output[-3000:]
    assert run.returncode == 0, run.output[-3000:]
    assert PROFILE_TASK in run.output  # the play went on past the guard
    assert not list(tmp_path.rglob("*.conf")), "check mode wrote a file"
