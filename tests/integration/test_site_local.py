"""playbooks/site.yml on inventories/local, as `make demo` runs it: check mode first, then for real, then
again with nothing to change. A dedicated Ollama serves the store that the model_cache stage seeds."""

from __future__ import annotations

import pytest

from tests.playbook import run_playbook
from tests.services.ollama import OllamaServer


@pytest.fixture
def seeded_server(tmp_path):
    store = tmp_path / "store"
    with OllamaServer.start(tmp_path / "ollama", {"OLLAMA_NOPRUNE": "1"}, store) as server:
        yield server


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_site_check_then_converge_then_idempotent(work_tree_collections, seeded_server, registry, tiny_model, tmp_path):
    env = {"OLLAMA_URL": seeded_server.url, "OLLAMA_REGISTRY": registry.host, "OLLAMA_DEMO_MODEL": tiny_model.ref}
    gitops = tmp_path / "gitops"
    extra = {"model_cache_path": str(seeded_server.models_dir), "ollama_flux_gitops_dir": str(gitops)}
    store_before = _files(seeded_server.models_dir)

    check = run_playbook(work_tree_collections, "site.yml", "local", extra, "--check", "--diff", env=env)
    assert check.returncode == 0, check.output[-4000:]
    assert check.recap["changed"] > 0
    assert "does not serve" in check.output  # the model a real run would seed is not there yet
    assert _files(seeded_server.models_dir) == store_before
    assert not gitops.exists()

    first = run_playbook(work_tree_collections, "site.yml", "local", extra, env=env)
    assert first.returncode == 0, first.output[-4000:]
    assert first.recap["changed"] > 0
    assert "local: healthy" in first.output
    # the preflight sized the demo model once: seed_models.yml and deploy.yml, which site.yml runs
    # after it, found the same inputs judged
    assert "ok: the models need" in first.said
    assert first.output.count("the same models and resources were judged earlier in this run") == 2
    assert (gitops / "apps" / "base" / "ollama" / "helmrelease.yaml").is_file()

    second = run_playbook(work_tree_collections, "site.yml", "local", extra, env=env)
    assert second.returncode == 0, second.output[-4000:]
    assert second.recap["changed"] == 0
