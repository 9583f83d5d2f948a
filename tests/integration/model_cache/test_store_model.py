"""ollama_store_model against the real registry (with its CDN redirect), then a real Ollama on the seeded store.

The store is written without any server; a second Ollama 0.18.3 then starts on it. Its start-up
prune removes every blob no manifest references, so listing the model with the same digest and
generating tokens proves both the layout and that the seeded store is complete.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import ollama_manifest_digest
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import human_bytes
from tests.services.ollama import OllamaServer
from tests.services.process import free_port
from tests.services.registry import MODEL_MEDIA_TYPE


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def registry_blob_file(registry, digest: str) -> Path:
    hexd = digest.split(":", 1)[1]
    return registry.root / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"


def post(url: str, body: dict, timeout: float = 120) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, tiny_model, seed_module):
    """Check mode first (nothing written), then the real seed into <workdir>/models."""
    workdir = tmp_path_factory.mktemp("seeded")
    store = workdir / "models"
    args = dict(name=tiny_model.ref, path=str(store), insecure=True)
    check = seed_module(args, check_mode=True)
    written_by_check = files_under(store)
    first = seed_module(args)
    return dict(workdir=workdir, store=store, args=args, check=check, first=first,
                written_by_check=written_by_check)


def test_check_mode_reports_the_seed_and_writes_nothing(seeded, tiny_model):
    check = seeded["check"]
    assert not check["failed"], check["msg"]
    assert check["changed"] and check["action"] == "seeded"
    assert check["digest"] == ollama_manifest_digest(tiny_model.manifest)
    assert check["bytes_transferred"] == tiny_model.size
    assert check["diff"]["before"] == {} and check["diff"]["after"]["digest"] == check["digest"]
    assert check["summary"] == [f"{check['name']}: {check['digest']} ({human_bytes(tiny_model.size)}), would be seeded",
                                f"would download {human_bytes(tiny_model.size)}"]
    assert seeded["written_by_check"] == []


def test_seed_writes_the_ollama_layout(seeded, tiny_model):
    first, store = seeded["first"], seeded["store"]
    assert not first["failed"], first["msg"]
    assert first["changed"] and first["action"] == "seeded"
    assert first["digest"] == ollama_manifest_digest(tiny_model.manifest)
    assert first["registry_digest"] == tiny_model.manifest_digest
    assert first["size"] == tiny_model.size == first["bytes_transferred"]
    assert first["bytes_per_second"] > 0
    assert first["summary"][0].endswith("), seeded")
    assert first["summary"][1] == (f"downloaded {human_bytes(tiny_model.size)} in {first['seconds']} s "
                                   f"({human_bytes(first['bytes_per_second'])}/s)")
    host = tiny_model.ref.split("/", 1)[0]
    descriptors = [tiny_model.manifest["config"], *tiny_model.manifest["layers"]]
    blobs = {"blobs/" + d["digest"].replace(":", "-") for d in descriptors}
    expected = {f"manifests/{host}/library/tiny/latest"} | blobs
    assert set(files_under(store)) == expected  # no -partial or temporary file left


def test_second_seed_changes_nothing_and_asks_no_registry(seeded, seed_module, registry):
    def manifest_requests():
        return (registry.workdir / "registry.log").read_text().count("/v2/library/tiny/manifests/latest")

    asked = manifest_requests()
    again = seed_module(seeded["args"])
    assert not again["failed"] and not again["changed"], again
    assert again["bytes_transferred"] == 0 and again["digest"] == seeded["first"]["digest"]
    assert again["summary"][0].endswith("), already complete") and again["summary"][1] == "nothing to download"
    assert not seed_module(seeded["args"], check_mode=True)["changed"]
    # a complete store is not compared with the registry, so a rerun works offline
    assert manifest_requests() == asked


def test_real_ollama_serves_the_seeded_store(seeded, tiny_model):
    with OllamaServer.start(seeded["workdir"]) as server:
        assert server.models_dir == seeded["store"]
        tags = json.loads(urllib.request.urlopen(server.url + "/api/tags", timeout=30).read())["models"]
        listed = {m["name"]: m for m in tags}
        assert tiny_model.ref in listed, f"{tiny_model.ref} not in {sorted(listed)}"
        assert "sha256:" + listed[tiny_model.ref]["digest"] == seeded["first"]["digest"]
        answer = post(server.url + "/api/generate", {"model": tiny_model.ref, "prompt": "hello", "stream": False,
                                                     "options": {"num_predict": 8, "seed": 1, "temperature": 0}})
        assert answer["eval_count"] > 0, answer
    # the server's start-up prune kept every blob
    assert all(not name.endswith("-partial") for name in files_under(seeded["store"]))
    assert len(files_under(seeded["store"] / "blobs")) == len(tiny_model.manifest["layers"]) + 1


def test_absent_removes_only_unshared_blobs(tmp_path, registry, model_factory, tiny_model, seed_module):
    other = registry.push_model(model_factory.tiny(seed=301), name="cache/other", tag="v1")
    store = tmp_path / "models"
    for ref in (tiny_model.ref, other.ref):
        assert seed_module(dict(name=ref, path=str(store), insecure=True))["changed"]
    check = seed_module(dict(name=other.ref, path=str(store), state="absent"), check_mode=True)
    assert check["changed"] and check["action"] == "removed"
    assert check["summary"] == [f"{check['name']}: would be removed"]  # no download line for state absent
    assert len(files_under(store / "manifests")) == 2
    gone = seed_module(dict(name=other.ref, path=str(store), state="absent"))
    assert gone["changed"] and gone["digest"] == "" and gone["diff"]["after"] == {}
    assert gone["summary"] == [f"{gone['name']}: removed"]
    shared = {d["digest"] for d in tiny_model.manifest["layers"]} & {d["digest"] for d in other.manifest["layers"]}
    assert shared and not set(gone["blobs_removed"]) & shared
    left = set(files_under(store))
    assert not any("cache/other" in name for name in left)
    assert not (store / "manifests" / other.ref.split("/", 1)[0] / "cache").exists()
    for digest in shared:
        assert "blobs/" + digest.replace(":", "-") in left
    assert seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True))["changed"] is False
    again = seed_module(dict(name=other.ref, path=str(store), state="absent"))
    assert not again["failed"] and not again["changed"] and again["summary"] == [f"{again['name']}: not in the store"]


def test_unknown_model_fails_clearly_and_writes_nothing(tmp_path, registry, seed_module):
    store = tmp_path / "models"
    ref = f"{registry.host}/library/no-such-model:v9"
    result = seed_module(dict(name=ref, path=str(store), insecure=True))
    assert result["failed"]
    assert "library/no-such-model:v9" in result["msg"] and "not found" in result["msg"]
    assert registry.host in result["msg"] and "check the model name and tag" in result["msg"]
    assert files_under(store) == []


def test_unreachable_registry_fails_clearly(tmp_path, seed_module):
    ref = f"127.0.0.1:{free_port()}/library/tiny:latest"
    result = seed_module(dict(name=ref, path=str(tmp_path / "models"), insecure=True, timeout=5))
    assert result["failed"] and "cannot reach registry" in result["msg"] and "proxy" in result["msg"], result["msg"]
    assert files_under(tmp_path / "models") == []


def test_corrupt_blob_in_the_registry_fails_verification(tmp_path, registry, model_factory, seed_module):
    model = registry.push_model(model_factory.tiny(seed=302), name="cache/corrupt", tag="v1")
    layer = next(d for d in model.manifest["layers"] if d["mediaType"] == MODEL_MEDIA_TYPE)
    data = registry_blob_file(registry, layer["digest"])
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, different content: only the sha256 can tell
    data.write_bytes(bytes(raw))
    store = tmp_path / "models"
    result = seed_module(dict(name=model.ref, path=str(store), insecure=True))
    assert result["failed"] and result["store_error"] == "digest"
    assert layer["digest"] in result["msg"] and "corrupt" in result["msg"], result["msg"]
    assert not (store / "manifests").exists() or files_under(store / "manifests") == []
    blob = store / "blobs" / layer["digest"].replace(":", "-")
    assert not blob.exists() and not Path(str(blob) + "-partial").exists()


def test_interrupted_download_resumes_from_the_partial_file(tmp_path, registry, model_factory, seed_module):
    model = registry.push_model(model_factory.tiny(seed=303), name="cache/resume", tag="v1")
    layer = next(d for d in model.manifest["layers"] if d["mediaType"] == MODEL_MEDIA_TYPE)
    store = tmp_path / "models"
    (store / "blobs").mkdir(parents=True)
    have = layer["size"] // 3
    partial = store / "blobs" / (layer["digest"].replace(":", "-") + "-partial")
    partial.write_bytes(registry_blob_file(registry, layer["digest"]).read_bytes()[:have])
    result = seed_module(dict(name=model.ref, path=str(store), insecure=True))
    assert not result["failed"], result["msg"]
    assert result["bytes_transferred"] == model.size - have
    assert not partial.exists()
    assert os.path.getsize(store / "blobs" / layer["digest"].replace(":", "-")) == layer["size"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_pseudo_filesystem_is_named_as_such_and_nothing_is_claimed(seed_module, tiny_model, check_mode):
    # /proc holds no files whatever the permissions: the real cause, not "disk full" or the registry
    result = seed_module(dict(name=tiny_model.ref, path="/proc/ollama-store/models", insecure=True),
                         check_mode=check_mode)
    assert result["failed"], result
    assert "/proc is on a pseudo-filesystem that holds no files" in result["msg"]
    assert "nothing was written" in result["msg"] and "free" not in result["msg"]
    assert result["changed"] is False and result["action"] == "none"


def test_a_relative_path_is_refused_before_anything_is_written(seed_module, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = seed_module(dict(name=tiny_model.ref, path="relative/models", insecure=True))
    assert result["failed"] and "path 'relative/models' is relative" in result["msg"], result
    assert not (tmp_path / "relative").exists()


def test_a_failed_run_reports_only_the_model_it_completed(tmp_path, registry, model_factory, seed_module):
    good = registry.push_model(model_factory.tiny(seed=304), name="cache/complete", tag="v1")
    bad = registry.push_model(model_factory.tiny(seed=305), name="cache/corrupted", tag="v1")
    store = tmp_path / "models"
    # the good model's blobs are in the store already, its manifest is not: nothing of it has to download
    assert not seed_module(dict(name=good.ref, path=str(store), insecure=True))["failed"]
    manifest = next(p for p in (store / "manifests").rglob("*") if p.is_file())
    manifest.unlink()
    layer = next(d for d in bad.manifest["layers"] if d["mediaType"] == MODEL_MEDIA_TYPE)
    data = registry_blob_file(registry, layer["digest"])
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))

    result = seed_module(dict(name=[good.ref, bad.ref], path=str(store), insecure=True))
    assert result["failed"] and "complete and written" in result["msg"], result["msg"]
    by_name = {entry["model"]: entry for entry in result["models"]}
    written, failed = by_name[good.ref], by_name[bad.ref]
    assert written["action"] == "seeded" and written["changed"] and written["digest"], written
    assert manifest.is_file()
    # the model whose blob failed verification reads as before: not in the store, nothing done
    assert failed["action"] == "none" and not failed["changed"] and failed["digest"] == "", failed
    assert result["changed"] and result["action"] == "seeded"
