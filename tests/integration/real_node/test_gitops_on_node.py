"""GitOps mode on the real node: the tree site.yml renders, served from a real git server, applied by
kustomize-controller with its own postBuild substitution, runs the seed Job and the chart's pod as
real containers, and verify.yml finds the thread-aligned model served.
"""

from __future__ import annotations

import pytest

from tests.integration.cluster.conftest import HELMRELEASE, KUSTOMIZATION, bootstrap_flux, is_ready, ready_in
from tests.services.real_node import NODE_NAME, pod_ready

FLUX = "flux-gitops-node"
APP = "ollama-gitops-node"
# Flux objects and the application in namespaces of their own, beside the apply-mode release
NAMES = {"ollama_flux_flux_namespace": FLUX, "model_cache_gitops_flux_namespace": FLUX,
         "ollama_flux_namespace": APP, "model_cache_namespace": APP, "ollama_flux_release_name": APP}


@pytest.fixture
def flux_stage(cluster):
    """The stage's Flux objects and application, gone from the node after the test: its pods' requests
    would leave the tests after it no room for their replicas."""
    yield
    # the Flux objects first, while their controllers run to honour their finalizers (helm uninstall)
    cluster.delete("v1", "Namespace", FLUX)
    cluster.wait_for(f"namespace {FLUX} deleted", lambda: cluster.find("v1", "Namespace", FLUX) is None, 300)
    cluster.delete("v1", "Namespace", APP)
    cluster.wait_for(f"namespace {APP} deleted", lambda: cluster.find("v1", "Namespace", APP) is None, 300)


def test_flux_applies_the_rendered_tree_and_the_pod_serves(cluster, run_on_node, git_server, node_model, tmp_path,
                                                           flux_stage):
    tree = tmp_path / "fleet"
    gitops = {**NAMES, "ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(tree)}
    # the stages that render; verify.yml follows once Flux has applied the tree
    for playbook in ("seed_models.yml", "deploy.yml"):
        render = run_on_node(playbook, gitops)
        assert render.returncode == 0, render.output[-6000:]
    url, _ = git_server.publish("fleet-node", tree, "ollama: prod on the real node")

    bootstrap_flux(cluster, FLUX, url)

    cluster.wait_for("seed Kustomization Ready",
                     lambda: ready_in(cluster, KUSTOMIZATION, "ollama-model-cache", FLUX), 300)
    cluster.wait_for("ollama Kustomization Ready", lambda: ready_in(cluster, KUSTOMIZATION, APP, FLUX), 300)
    assert is_ready(cluster.get(*HELMRELEASE, APP, FLUX))

    pods = [pod for pod in cluster.get("v1", "Pod", namespace=APP, label_selector=f"app.kubernetes.io/instance={APP}")
            ["items"] if not pod["metadata"].get("deletionTimestamp")]
    # the stage's replicas (OLLAMA_REPLICAS in its cluster-vars), each a real pod on the node, Ready
    replicas = int(cluster.get("v1", "ConfigMap", "cluster-vars", FLUX)["data"]["OLLAMA_REPLICAS"])
    assert replicas == 2
    assert [(pod["spec"]["nodeName"], pod_ready(pod)) for pod in pods] == [(NODE_NAME, True)] * replicas
    verified = run_on_node("verify.yml", {**NAMES, "inference_check_endpoints": [
        {"name": "direct", "url": f"http://{APP}.{APP}.svc.cluster.local:11434"}]})
    assert verified.returncode == 0, verified.output[-6000:]
    assert f"direct: healthy, model {node_model.ref}-t2" in verified.said, verified.said[-3000:]
