"""GitOps mode end to end: the tree site.yml renders, served from a real git server to Flux's
source-controller and applied by kustomize-controller with its own postBuild substitution from the
cluster-vars ConfigMap, yields the HelmRelease values apply mode sends, and Ollama's Kustomization
waits for the seed Job's (dependsOn)."""

from __future__ import annotations

from tests.integration.cluster.conftest import (
    GITREPOSITORY,
    HELMRELEASE,
    INVENTORY,
    KUSTOMIZATION,
    bootstrap_flux,
    condition,
    is_ready,
    ready_in,
)
from tests.playbook import role_objects

FLUX = "flux-gitops"
APP = "ollama-gitops"
# Flux objects and the application in namespaces of their own, so this test shares nothing with the
# apply-mode release of test_site_apply.py
NAMES = {"ollama_flux_flux_namespace": FLUX, "model_cache_gitops_flux_namespace": FLUX,
         "ollama_flux_namespace": APP, "model_cache_namespace": APP, "ollama_flux_release_name": APP}


def artifact_revision(cluster, namespace: str) -> str | None:
    source = ready_in(cluster, GITREPOSITORY, "flux-system", namespace)
    return ((source or {}).get("status", {}).get("artifact") or {}).get("revision")


def test_flux_applies_the_rendered_tree_with_the_values_of_apply_mode(
        cluster, run_on_cluster, git_server, work_tree_collections, tmp_path):
    tree = tmp_path / "fleet"
    render = run_on_cluster("site.yml", {**NAMES, "ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(tree)})
    assert render.returncode == 0, render.output[-6000:]
    url, commit = git_server.publish("fleet", tree, "ollama: prod")

    bootstrap_flux(cluster, FLUX, url)

    # source-controller patches the conditions before the rest of the status: Ready can be read
    # before the artifact is, so wait for the artifact of the published commit itself
    cluster.wait_for("GitRepository artifact of the published commit",
                     lambda: artifact_revision(cluster, FLUX) == f"main@sha1:{commit}", 120)
    seed = cluster.wait_for("seed Kustomization Ready",
                            lambda: ready_in(cluster, KUSTOMIZATION, "ollama-model-cache", FLUX), 240)
    ollama = cluster.wait_for("ollama Kustomization Ready", lambda: ready_in(cluster, KUSTOMIZATION, APP, FLUX), 300)

    assert ollama["spec"]["dependsOn"] == [{"name": "ollama-model-cache"}]
    assert condition(ollama)["lastTransitionTime"] >= condition(seed)["lastTransitionTime"]
    jobs = cluster.get("batch/v1", "Job", namespace=APP, label_selector="app.kubernetes.io/component=model-cache")
    assert [condition(job, "Complete").get("status") for job in jobs["items"]] == ["True"]

    release = cluster.get(*HELMRELEASE, APP, FLUX)
    assert is_ready(release), release.get("status")
    applied = role_objects(work_tree_collections, "ollama_flux", str(INVENTORY), "__ollama_flux_helmrelease_obj",
                           tmp_path, {**NAMES, "ollama_flux_mode": "apply"}, env=run_on_cluster.env)
    assert release["spec"]["values"] == applied["spec"]["values"]
    assert release["spec"]["chart"]["spec"]["version"] == applied["spec"]["chart"]["spec"]["version"]

