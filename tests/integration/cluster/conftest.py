"""Playbooks in apply mode against the session's real cluster (tests/services/cluster.py).

The inventory beside this file is the prod inventory (its group_vars are linked) pointed at the
cluster's Helm repository, the session's registry (the tiny model) and its real Ollama, which stands
in for the pod kwok cannot run: it serves the thread-aligned model the pod's init container would
create, so inference_check probes real inference at the end of site.yml.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.aiplatform.ollama.plugins.filter.k8s_cpu_millicores import k8s_cpu_millicores
from tests.playbook import PlaybookRun, run_playbook

INVENTORY = Path(__file__).resolve().parent / "inventory"
PROD_FLUX_VARS = Path(__file__).resolve().parents[3] / "inventories" / "prod" / "group_vars" / "all" / "ollama_flux.yml"

HELMRELEASE = ("helm.toolkit.fluxcd.io/v2", "HelmRelease")
HELMREPOSITORY = ("source.toolkit.fluxcd.io/v1", "HelmRepository")
HELMCHART = ("source.toolkit.fluxcd.io/v1", "HelmChart")


def condition(obj: dict | None, kind: str = "Ready") -> dict:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond
    return {}


def is_ready(obj: dict | None) -> bool:
    return condition(obj).get("status") == "True"


@pytest.fixture(scope="session")
def served_model(ollama, tiny_model) -> str:
    """The model the prod pod serves, <model>-t<whole CPUs of the limit>, created in the real Ollama
    exactly as the align-threads init container creates it in the pod."""
    cpu_limit = yaml.safe_load(PROD_FLUX_VARS.read_text())["ollama_flux_cpu_limit"]
    threads = max(k8s_cpu_millicores(cpu_limit) // 1000, 1)
    ollama.cli("pull", "--insecure", tiny_model.ref)
    return ollama.derive(f"{tiny_model.ref}-t{threads}", tiny_model.ref, num_thread=threads)


@pytest.fixture(scope="session")
def run_on_cluster(cluster, ollama, tiny_model, served_model, work_tree_collections):
    """ansible-playbook -i tests/integration/cluster/inventory playbooks/<playbook> -e <extra vars> ARGS."""

    env = {**cluster.env(), "AIPLATFORM_TEST_MODEL": tiny_model.ref, "AIPLATFORM_TEST_OLLAMA_URL": ollama.url}

    def run(playbook: str, extra_vars: dict | None = None, *args: str, timeout: float = 900) -> PlaybookRun:
        return run_playbook(work_tree_collections, playbook, str(INVENTORY), extra_vars, *args, env=env,
                            timeout=timeout)

    run.env = env  # for a playbook run another way (tests.playbook.role_objects)
    return run
