"""The preflight against a real registry serving qwen2.5:72b's header (tests/services/qwen72b.py).

dev and prod as the inventories ship them pass; the seed's own sizes fail in enforce mode before any
seed, deploy or tuning task runs, with every number; warn mode goes on; bad input gets a clear error.
Each run renders GitOps files into a temporary tree, so nothing reaches a cluster.
"""

from __future__ import annotations

import pytest

from tests.playbook import run_playbook
from tests.seed_table import SEED_TABLE
from tests.services.process import free_port
from tests.services.qwen72b import publish


@pytest.fixture(scope="module")
def qwen72b(registry, tmp_path_factory):
    return publish(registry, tmp_path_factory.mktemp("qwen72b"))


def models(ref: str, tree) -> dict:
    """The inventory's qwen2.5:72b, read from the local registry instead of registry.ollama.ai."""
    return {"ollama_flux_model": ref, "model_cache_models": [ref], "model_cache_insecure": True,
            "ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(tree)}


def seed_sizes(environment: str) -> dict:
    table = SEED_TABLE[environment]
    return {"ollama_flux_memory_limit": table["OLLAMA_MEMORY_LIMIT"],
            "ollama_flux_memory_request": table["OLLAMA_MEMORY_REQUEST"],
            "ollama_flux_storage_size": table["OLLAMA_STORAGE_SIZE"]}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_shipped_sizes_pass(work_tree_collections, qwen72b, tmp_path, environment):
    run = run_playbook(work_tree_collections, "preflight.yml", environment, models(qwen72b.ref, tmp_path))
    assert run.returncode == 0, run.output[-4000:]
    said = run.said
    # Qwen2.5-72B Q4_K_M: 47.4 GB of weights (44.1 GiB), 320 KiB of f16 KV cache per token
    assert "needs 50.5 GiB of memory: 44.1 GiB weights + 1.2 GiB f16 KV cache (4096 tokens x 1 parallel)" in said
    assert "ollama_flux_memory_limit is 52Gi (52.0 GiB)" in said
    assert "the models need 88.2 GiB of storage" in said and "ollama_flux_storage_size is 100Gi" in said
    assert "FAILED" not in said
    assert run.recap["changed"] == 0


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_seed_sizes_stop_site_before_anything_runs(work_tree_collections, qwen72b, tmp_path, environment):
    tree = tmp_path / "tree"
    run = run_playbook(work_tree_collections, "site.yml", environment,
                       {**models(qwen72b.ref, tree), **seed_sizes(environment)})
    assert run.returncode != 0
    said = run.said
    limit = SEED_TABLE[environment]["OLLAMA_MEMORY_LIMIT"]
    assert "Preflight (preflight_mode=enforce):" in said, run.output[-4000:]
    assert f"ollama_flux_memory_limit is {limit}" in said
    assert "short: the pod would be OOMKilled while loading the model" in said
    assert "Fix: set ollama_flux_memory_limit and ollama_flux_memory_request to 51Gi or more" in said
    assert "short: the seed would stop with the volume full" in said
    assert "Fix: set ollama_flux_storage_size to 89Gi or more" in said
    # the first play failed, so no later play started: no node was tuned, nothing seeded or rendered
    for play in ("Tune the inference nodes", "Pre-seed the Ollama model store", "Deploy Ollama through Flux"):
        assert f"PLAY [{play}]" not in run.output
    assert not tree.exists()


def test_warn_mode_reports_and_goes_on(work_tree_collections, qwen72b, tmp_path):
    tree = tmp_path / "tree"
    run = run_playbook(work_tree_collections, "seed_models.yml", "dev",
                       {**models(qwen72b.ref, tree), **seed_sizes("dev"), "model_cache_mode": "gitops",
                        "model_cache_gitops_dir": str(tree), "preflight_mode": "warn"})
    assert run.returncode == 0, run.output[-4000:]
    assert "PREFLIGHT WARNING (preflight_mode=warn, going on):" in run.said
    assert "ollama_flux_memory_limit is 3Gi" in run.said
    assert (tree / "apps").is_dir()


def test_a_fitting_model_passes_the_seed_sizes(work_tree_collections, tiny_model, tmp_path):
    run = run_playbook(work_tree_collections, "preflight.yml", "prod",
                       {**models(tiny_model.ref, tmp_path), **seed_sizes("prod")})
    assert run.returncode == 0, run.output[-4000:]
    assert "FAILED" not in run.said and "ok: the models need" in run.said


def test_a_claim_without_a_size_is_judged_at_the_size_model_cache_gives_it(work_tree_collections, qwen72b, tmp_path):
    # the embedded default sets no size: a claim seeded by model_cache is its default size, which is judged
    claim = run_playbook(work_tree_collections, "preflight.yml", "local",
                         {**models(qwen72b.ref, tmp_path), "model_cache_target": "kubernetes"})
    assert claim.returncode != 0
    assert "short: the seed would stop with the volume full" in claim.said, claim.output[-4000:]
    assert "is 5Gi (5.0 GiB)" in claim.said
    # a store directory is no claim: the seeder checks its free space before it writes
    directory = run_playbook(work_tree_collections, "preflight.yml", "local", models(qwen72b.ref, tmp_path))
    assert "size is not known here, so it is not checked" in directory.said, directory.output[-4000:]
    assert "volume full" not in directory.said


def test_bad_input_is_named(work_tree_collections, registry, qwen72b, tmp_path):
    base = models(qwen72b.ref, tmp_path)

    unknown = f"{registry.host}/library/no-such-model:7b"
    run = run_playbook(work_tree_collections, "preflight.yml", "prod",
                       {**base, "model_cache_models": [qwen72b.ref, unknown]})
    assert run.returncode != 0
    assert f"Preflight cannot size {unknown}:" in run.said, run.output[-4000:]
    assert "Fix: correct the name in preflight_models" in run.said

    nowhere = f"127.0.0.1:{free_port()}/library/qwen2.5:72b"
    run = run_playbook(work_tree_collections, "preflight.yml", "prod", {**models(nowhere, tmp_path)})
    assert run.returncode != 0
    assert f"Preflight cannot size {nowhere}:" in run.said, run.output[-4000:]
    assert "preflight_mode=off" in run.said

    run = run_playbook(work_tree_collections, "preflight.yml", "prod", {**base, "ollama_flux_memory_limit": "52GB"})
    assert run.returncode != 0
    assert "ollama_flux_memory_limit: '52GB' is not a Kubernetes memory quantity" in run.said, run.output[-4000:]

    run = run_playbook(work_tree_collections, "preflight.yml", "prod", {**base, "preflight_mode": "strict"})
    assert run.returncode != 0
    assert "preflight_mode" in run.said and "strict" in run.said, run.output[-4000:]
