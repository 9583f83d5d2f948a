"""ollama_store_model's prune on a store a real Ollama wrote to: a tag moved by `ollama pull` under
OLLAMA_NOPRUNE (as a read-only replica's store is kept) leaves its old blobs behind, and the prune
removes exactly those, reports the bytes, waits for the store lock, refuses while a server's pull (which
takes no store lock) is downloading into the store, and leaves a store Ollama serves."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore
from ansible_collections.aiplatform.ollama.plugins.module_utils.store_writers import partial_writers
from tests.services.nginx import RegistryFront
from tests.services.ollama import OllamaServer


def blob_files(store: Path) -> dict[str, int]:
    return {p.name.replace("-", ":", 1): p.stat().st_size for p in (store / "blobs").iterdir()}


def digests(model) -> set[str]:
    return {d["digest"] for d in [model.manifest["config"], *model.manifest["layers"]]}


def test_prune_removes_exactly_what_a_moved_tag_left_and_ollama_still_serves(tmp_path, registry, model_factory,
                                                                            tiny_model, seed_module):
    store = tmp_path / "models"
    first = registry.push_model(model_factory.tiny(seed=401), name="cache/moving", tag="v1")
    for ref in (tiny_model.ref, first.ref):
        assert seed_module(dict(name=ref, path=str(store), insecure=True))["changed"]
    # the tag moves in the registry, and a real Ollama that must not prune (OLLAMA_NOPRUNE) pulls it
    second = registry.push_model(model_factory.tiny(seed=402), name="cache/moving", tag="v1")
    with OllamaServer.start(tmp_path / "ollama", env={"OLLAMA_NOPRUNE": "1"}, models_dir=store) as server:
        server.cli("pull", "--insecure", second.ref)
    left_behind = digests(first) - digests(second) - digests(tiny_model)
    assert left_behind and left_behind <= set(blob_files(store))
    before = blob_files(store)

    check = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, prune=True), check_mode=True)
    assert check["changed"] and set(check["blobs_pruned"]) == left_behind, check
    assert check["bytes_freed"] == sum(before[d] for d in left_behind)
    assert blob_files(store) == before  # check mode removed nothing

    pruned = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, prune=True))
    assert pruned["changed"] and set(pruned["blobs_pruned"]) == left_behind, pruned
    assert pruned["bytes_freed"] == sum(before[d] for d in left_behind)
    assert blob_files(store) == {d: s for d, s in before.items() if d not in left_behind}
    # every model still in the store is whole, and a real Ollama serves both
    with OllamaServer.start(tmp_path / "ollama", env={"OLLAMA_NOPRUNE": "1"}, models_dir=store) as server:
        for ref in (tiny_model.ref, second.ref):
            request = urllib.request.Request(server.url + "/api/generate", json.dumps(
                {"model": ref, "prompt": "hi", "stream": False, "options": {"num_predict": 2}}).encode(),
                {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                assert json.load(response)["done"] is True

    again = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, prune=True))
    assert not again["changed"] and again["blobs_pruned"] == [] and again["bytes_freed"] == 0


def test_prune_waits_for_a_seeder_holding_the_store_then_fails_removing_nothing(tmp_path, registry, model_factory,
                                                                               tiny_model, seed_module):
    store = tmp_path / "models"
    other = registry.push_model(model_factory.tiny(seed=403), name="cache/gone", tag="v1")
    for ref in (tiny_model.ref, other.ref):
        assert seed_module(dict(name=ref, path=str(store), insecure=True))["changed"]
    # what a crash between the removal of a manifest and of its blobs leaves: blobs nothing references
    manifest = next((store / "manifests").rglob("gone/v1"))
    manifest.unlink()
    before = blob_files(store)
    with OllamaStore(str(store)).lock(holder="a seeder still writing"):
        held = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, prune=True, lock_timeout=1))
    assert held["failed"] and "a seeder still writing" in held["msg"] and f"pid {os.getpid()}" in held["msg"], held
    assert blob_files(store) == before
    done = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, prune=True, lock_timeout=1))
    assert done["changed"] and set(done["blobs_pruned"]) == digests(other) - digests(tiny_model), done


def test_prune_refuses_when_a_manifest_cannot_be_read(tmp_path, registry, model_factory, tiny_model, seed_module):
    store = tmp_path / "models"
    assert seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True))["changed"]
    (store / "blobs" / ("sha256-" + "a" * 64)).write_bytes(b"an orphan")
    bad = store / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    before = blob_files(store)
    refused = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, prune=True))
    assert refused["failed"] and str(bad) in refused["msg"] and "unknown" in refused["msg"], refused
    assert blob_files(store) == before


def test_prune_refuses_while_a_server_pulls_into_the_store(tmp_path, registry, model_factory, tiny_model, seed_module):
    store = tmp_path / "models"
    other = registry.push_model(model_factory.tiny(seed=404), name="cache/dropped", tag="v1")
    for ref in (tiny_model.ref, other.ref):
        assert seed_module(dict(name=ref, path=str(store), insecure=True))["changed"]
    next((store / "manifests").rglob("dropped/v1")).unlink()
    left_behind = digests(other) - digests(tiny_model)
    # 64 MB through a CDN giving its one connection 4 MiB/s: the pull downloads for about 16 s
    large = registry.push_model(model_factory.large(64, seed=3), name="cache/pulling", tag="v1")
    with RegistryFront.start(tmp_path / "cdn", registry, cdn="limit_rate 4m;") as front, \
            OllamaServer.start(tmp_path / "ollama", env={"OLLAMA_NOPRUNE": "1"}, models_dir=store) as server:
        pull = subprocess.Popen([server.binary, "pull", "--insecure", front.ref(large)],
                                env={**os.environ, **server.env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            deadline = time.monotonic() + 60
            while not partial_writers(store / "blobs") and pull.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert partial_writers(store / "blobs"), "the pull never held a partial download open"
            before = blob_files(store)
            refused = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, prune=True))
            assert refused["failed"] and refused["error"]["kind"] == "busy", refused
            assert f"ollama (pid {server.processes[0].proc.pid}) writes {store / 'blobs'}" in refused["msg"], refused
            assert left_behind <= set(blob_files(store)) and set(before) <= set(blob_files(store))
        finally:
            _out, err = pull.communicate(timeout=300)
        assert pull.returncode == 0, err[-2000:]
        pruned = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, prune=True))
        assert pruned["changed"] and set(pruned["blobs_pruned"]) == left_behind, pruned
        # the pulled model is whole, and the server lists it
        assert OllamaStore(str(store)).missing(large.manifest) == []
        assert "cache/pulling:v1" in server.cli("list").stdout
