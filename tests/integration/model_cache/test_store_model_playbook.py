"""ollama_store_model through ansible-playbook and the model_cache role, against the real registry:
its action plugin's progress lines reach the normal output while a model downloads, and a second
run changes nothing."""

from __future__ import annotations

import re

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import PROGRESS_FILE_ENV
from tests.playbook import run_playbook


@pytest.fixture(scope="module")
def large_model(registry, model_factory):
    # large enough that the download lasts several progress intervals
    return registry.push_model(model_factory.large(512, seed=5), name="itest/seedprogress", tag="v1")


def test_seed_prints_progress_then_converges(tmp_path, work_tree_collections, large_model):
    store = tmp_path / "models"
    extra = {"model_cache_path": str(store), "model_cache_models": [large_model.ref],
             # parallel parts seed the model within a second on loopback: a line every 0.1 s still shows
             "model_cache_insecure": True, "model_cache_progress_interval": 0.1}
    first = run_playbook(work_tree_collections, "seed_models.yml", "local", extra)
    assert first.returncode == 0 and first.recap["changed"] == 1, first.output[-3000:]
    lines = [line for line in first.output.splitlines() if f"seeding {large_model.ref}:" in line]
    assert lines, first.output[-3000:]
    assert any(re.search(r"\d+\.\d% .*B / .*iB at .*/s, ETA .* \(blob \d/\d sha256:", line) for line in lines), lines
    assert "ansible_job_id" not in first.output
    assert not list(store.rglob("*-partial"))
    again = run_playbook(work_tree_collections, "seed_models.yml", "local", extra)
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-3000:]
    assert "already complete" in again.output and f"seeding {large_model.ref}:" not in again.output


def test_unwritable_progress_file_does_not_fail_the_seed(tmp_path, monkeypatch, seed_module, tiny_model):
    # the action plugin names the file in the module's environment; here it names one that cannot be written
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(tmp_path / "no-such-dir" / "progress.json"))
    result = seed_module(dict(name=tiny_model.ref, path=str(tmp_path / "models"), insecure=True))
    assert not result["failed"], result["msg"]
    assert result["changed"] and result["action"] == "seeded"
