"""Playbooks in apply mode against the session's real cluster (tests/services/cluster.py).

These are the Flux mechanics on kwok's nodes: check mode, upgrades, remediation, failed seeds and
claims, node labels, the preflight against nodes of any size. The inventory beside this file is the
prod inventory (its group_vars are linked) pointed at the cluster's Helm repository and the session's
registry (the tiny model). kwok runs no containers, so for site.yml's last stage the session's real
Ollama stands in for the pod, serving the thread-aligned model its init container would create. The
service itself, running, is tested on the cluster's real node (tests/integration/real_node).
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


KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
GITREPOSITORY = ("source.toolkit.fluxcd.io/v1", "GitRepository")


def bootstrap_flux(cluster, flux_namespace: str, url: str) -> None:
    """What `flux bootstrap` leaves for a stage's tree: the GitRepository flux-system on url and the
    Kustomization of clusters/stages/prod/services, in flux_namespace."""
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": flux_namespace}})
    cluster.apply(
        {"apiVersion": GITREPOSITORY[0], "kind": GITREPOSITORY[1],
         "metadata": {"name": "flux-system", "namespace": flux_namespace},
         "spec": {"interval": "1m", "url": url, "ref": {"branch": "main"}}},
        {"apiVersion": KUSTOMIZATION[0], "kind": KUSTOMIZATION[1],
         "metadata": {"name": "services", "namespace": flux_namespace},
         "spec": {"interval": "10m", "path": "./clusters/stages/prod/services", "prune": True,
                  "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}})


def ready_in(cluster, kind: tuple, name: str, namespace: str):
    """The object once Ready, else None (for cluster.wait_for)."""
    obj = cluster.find(*kind, name, namespace)
    return obj if is_ready(obj) else None


@pytest.fixture(scope="session")
def served_model(ollama, tiny_model) -> str:
    """The model the prod pod serves, <model>-t<whole CPUs of the limit>, created in the real Ollama
    with `ollama create`, as the seed Job creates it on the claim."""
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
