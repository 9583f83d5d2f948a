"""rollout.yml's refusals on the cluster site.yml deployed (test_site_apply.py, before this file): each one
stops before anything changes, naming what to fix. The rollouts themselves run on the real node
(tests/integration/real_node/test_site_rollout_on_node.py)."""

from __future__ import annotations

from tests.integration.cluster.conftest import HELMRELEASE

FLUX = "flux-system"
RECORD = ("v1", "ConfigMap", "ollama-rollout", "ollama")


def unchanged(cluster):
    """What a refused rollout must leave as it was: the HelmRelease's spec and the rollout record."""
    return cluster.get(*HELMRELEASE, "ollama", FLUX)["spec"], cluster.find(*RECORD)


def test_a_model_that_does_not_fit_beside_the_served_one_is_refused_with_the_size_needed(
        cluster, run_on_cluster, registry, model_factory):
    bigger = registry.push_model(model_factory.large(64, seed=21), name="library/bigger", tag="v1")
    before = unchanged(cluster)
    refused = run_on_cluster("rollout.yml", {"model_rollout_model": bigger.ref, "model_cache_storage_size": "48Mi"})
    assert refused.returncode != 0
    said = refused.said
    # the claim must hold both until the prune: the served model and the next one are sized together
    assert "short: the seed would stop with the volume full" in said, said[-4000:]
    assert bigger.ref in said and "Fix: set" in said
    assert unchanged(cluster) == before


def test_a_model_the_registry_does_not_have_is_refused_naming_the_variable(cluster, run_on_cluster, registry):
    before = unchanged(cluster)
    absent = f"{registry.host}/library/absent:v1"
    refused = run_on_cluster("rollout.yml", {"model_rollout_model": absent})
    assert refused.returncode != 0
    assert f"Preflight cannot size {absent}" in refused.said, refused.said[-4000:]
    assert "Fix: correct the name in model_rollout_model" in refused.said
    assert unchanged(cluster) == before


def test_a_rollback_with_none_recorded_is_refused(cluster, run_on_cluster):
    before = unchanged(cluster)
    refused = run_on_cluster("rollout.yml", {"model_rollout_rollback": True})
    assert refused.returncode != 0 and "nothing to roll back to" in refused.said, refused.said[-4000:]
    assert unchanged(cluster) == before
