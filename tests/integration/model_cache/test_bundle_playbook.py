"""ollama_bundle through ansible-playbook (bundle_export.yml, bundle_import.yml): its action plugin's
progress lines reach the normal output while a 512 MiB model is exported and imported, and a second
run of each changes nothing."""

from __future__ import annotations

import re

import pytest

from tests.module_runner import run_module
from tests.playbook import run_playbook

LINE = r"\d+\.\d% .*B / .*iB at .*/s, ETA .* \((checking )?blob \d/\d sha256:"


@pytest.fixture(scope="module")
def large_store(registry, model_factory, tmp_path_factory):
    # the model and name test_store_model_playbook publishes: the registry already holds it then
    published = registry.push_model(model_factory.large(512, seed=5), name="itest/seedprogress", tag="v1")
    store = tmp_path_factory.mktemp("bundle-progress") / "models"
    seeded = run_module("ollama_store_model", dict(name=published.ref, path=str(store), insecure=True,
                                                   progress_interval=0))
    assert not seeded["failed"], seeded["msg"]
    return published, store


def progress_lines(output: str, verb: str, ref: str) -> list[str]:
    short = ref.split("/", 1)[1] if ref.startswith("registry.ollama.ai/") else ref
    return [line for line in output.splitlines() if f"{verb} {short}:" in line]


def test_export_and_import_print_progress_then_converge(large_store, tmp_path, work_tree_collections):
    published, source = large_store
    bundle = tmp_path / "large.tar"
    common = {"bundle_path": str(bundle), "bundle_models": [published.ref], "bundle_progress_interval": 0.1}
    first = run_playbook(work_tree_collections, "bundle_export.yml", "local", dict(common, bundle_store=str(source)))
    assert first.returncode == 0 and first.recap["changed"] == 1, first.output[-3000:]
    lines = progress_lines(first.output, "exporting", published.ref)
    assert any(re.search(LINE, line) for line in lines), first.output[-3000:]
    assert "ansible_job_id" not in first.output

    store = tmp_path / "models"
    imported = run_playbook(work_tree_collections, "bundle_import.yml", "local", dict(common, bundle_store=str(store)))
    assert imported.returncode == 0 and imported.recap["changed"] == 1, imported.output[-3000:]
    lines = progress_lines(imported.output, "importing", published.ref)
    assert any(re.search(LINE, line) and "checking" not in line for line in lines), imported.output[-3000:]
    assert not list(store.rglob("*-partial*"))

    again = run_playbook(work_tree_collections, "bundle_export.yml", "local", dict(common, bundle_store=str(source)))
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-3000:]
    again = run_playbook(work_tree_collections, "bundle_import.yml", "local", dict(common, bundle_store=str(store)))
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-3000:]
    # the second import re-hashes the 512 MiB the store holds, and its lines say so
    assert any("checking blob" in line for line in progress_lines(again.output, "importing", published.ref)), \
        again.output[-3000:]
