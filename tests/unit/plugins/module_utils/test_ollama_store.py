"""The store layout helpers on a temporary directory: paths, verification, atomicity, removal."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import ollama_manifest_digest
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import (
    OllamaStore,
    StoreError,
    blob_name,
    descriptors,
    digest_hex,
)


def blob(content: bytes, media_type="application/vnd.ollama.image.model") -> dict:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(content).hexdigest(), "size": len(content)}


def manifest(*contents: bytes) -> dict:
    config = blob(b'{"model_format":"gguf"}', "application/vnd.docker.container.image.v1+json")
    return {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": config, "layers": [blob(c) for c in contents]}


def opener_for(content: bytes, honour_range=True):
    def opener(offset):
        start = offset if honour_range else 0
        return io.BytesIO(content[start:]), start
    return opener


def fill(store: OllamaStore, mf: dict, contents: dict) -> None:
    for digest, size in descriptors(mf):
        store.download_blob(digest, size, opener_for(contents[digest]))


def contents_of(mf: dict, *layers: bytes) -> dict:
    data = {d["digest"]: c for d, c in zip(mf["layers"], layers)}
    data[mf["config"]["digest"]] = b'{"model_format":"gguf"}'
    return data


def two_models_sharing_a_layer(root):
    """A store holding team/one:v1 and other/two:v1, whose second layers are the same blob."""
    store = OllamaStore(root)
    models = []
    for name, weights in (("team/one:v1", b"one-weights"), ("other/two:v1", b"two-weights")):
        ref, mf = ModelRef.parse(name), manifest(weights, b"shared")
        fill(store, mf, contents_of(mf, weights, b"shared"))
        store.write_manifest(ref, mf)
        models.append((ref, mf))
    return store, *models


def test_layout_matches_ollama(tmp_path):
    store = OllamaStore(tmp_path)
    ref = ModelRef.parse("qwen2.5:72b")
    assert store.manifest_path(ref) == str(tmp_path / "manifests/registry.ollama.ai/library/qwen2.5/72b")
    assert blob_name("sha256:" + "A" * 64) == "sha256-" + "a" * 64
    with pytest.raises(StoreError):
        blob_name("md5:abc")


def test_seed_then_manifest_written_last_with_ollamas_digest(tmp_path):
    store = OllamaStore(tmp_path)
    ref = ModelRef.parse("localhost:5000/library/tiny:v1")
    mf = manifest(b"weights" * 100, b"{{ .Prompt }}")
    with pytest.raises(StoreError) as err:
        store.write_manifest(ref, mf)
    assert err.value.kind == "incomplete" and not (tmp_path / "manifests/localhost:5000").exists()
    fill(store, mf, contents_of(mf, b"weights" * 100, b"{{ .Prompt }}"))
    assert store.missing(mf) == []
    digest = store.write_manifest(ref, mf)
    assert digest == ollama_manifest_digest(mf) == store.read_manifest(ref).digest
    with open(store.manifest_path(ref)) as handle:
        assert json.loads(handle.read()) == mf
    assert sorted(p.name for p in (tmp_path / "blobs").iterdir()) == sorted(
        blob_name(d) for d, _s in descriptors(mf))  # no partial or temporary file


def test_digest_mismatch_leaves_nothing(tmp_path):
    store = OllamaStore(tmp_path)
    good = b"x" * 4096
    digest = "sha256:" + hashlib.sha256(good).hexdigest()
    with pytest.raises(StoreError) as err:
        store.download_blob(digest, len(good), opener_for(b"y" * 4096))
    assert err.value.kind == "digest" and err.value.digest == digest
    assert list((tmp_path / "blobs").iterdir()) == []


def test_short_download_keeps_the_partial_and_resumes(tmp_path):
    store = OllamaStore(tmp_path)
    data = bytes(range(256)) * 64
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with pytest.raises(StoreError) as err:
        store.download_blob(digest, len(data), opener_for(data[:1000], honour_range=False))
    assert err.value.kind == "short" and store.partial_bytes(digest, len(data)) == 1000
    assert store.download_blob(digest, len(data), opener_for(data)) == len(data) - 1000
    assert store.blob_complete(digest, len(data))


def test_resume_ignored_by_the_server_starts_over(tmp_path):
    store = OllamaStore(tmp_path)
    data = b"abc" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / (blob_name(digest) + "-partial")).write_bytes(data[:500])
    assert store.download_blob(digest, len(data), opener_for(data, honour_range=False)) == len(data)
    assert store.blob_complete(digest, len(data))


def test_oversized_blob_is_refused(tmp_path):
    store = OllamaStore(tmp_path)
    data = b"z" * 100
    with pytest.raises(StoreError) as err:
        store.download_blob("sha256:" + hashlib.sha256(data).hexdigest(), 50, opener_for(data))
    assert err.value.kind == "size" and list((tmp_path / "blobs").iterdir()) == []


def test_remove_keeps_shared_blobs_and_prunes_directories(tmp_path):
    store, (one, m1), (two, m2) = two_models_sharing_a_layer(tmp_path)
    removed, freed, kept = store.remove(two)
    assert kept is None and removed == [m2["layers"][0]["digest"]] and freed == len(b"two-weights")
    assert store.read_manifest(two) is None and not (tmp_path / "manifests/registry.ollama.ai/other").exists()
    assert store.missing(m1) == []
    assert store.remove(two) == ([], 0, None)


def test_unreadable_manifest_is_reported_as_corrupt(tmp_path):
    store = OllamaStore(tmp_path)
    ref = ModelRef.parse("tiny")
    path = tmp_path / "manifests/registry.ollama.ai/library/tiny/latest"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(StoreError) as err:
        store.read_manifest(ref)
    assert err.value.kind == "corrupt"
    # the callers' one reading names the model and keeps the kind
    with pytest.raises(StoreError, match=f"reading the manifest of tiny:latest in {tmp_path}: {path} is not an"):
        store.require_manifest(ref)


def test_a_model_the_store_lacks_is_absent_with_the_manifest_path(tmp_path):
    store, (one, m1), (_two, _m2) = two_models_sharing_a_layer(tmp_path)
    assert store.require_manifest(one).manifest == m1
    lacking = ModelRef.parse("nothere:v1")
    with pytest.raises(StoreError) as err:
        store.require_manifest(lacking)
    assert err.value.kind == "absent" and err.value.path == store.manifest_path(lacking)
    assert str(err.value) == store.absent_message(lacking) == (
        f"nothere:v1 is not in the store {tmp_path} (no manifest at {store.manifest_path(lacking)})")


@pytest.mark.parametrize("digest", ["sha256:" + "a" * 64 + "\n", "sha256:" + "a" * 63, "md5:" + "a" * 64, ""])
def test_only_a_whole_sha256_digest_names_a_blob(digest):
    # a trailing newline passes a regex match anchored with $, and would name another file
    with pytest.raises(StoreError, match="is not a sha256 digest"):
        digest_hex(digest)
    assert digest_hex("sha256:" + "A" * 64) == "a" * 64


def test_a_model_made_in_memory_is_written_once_and_atomically(tmp_path):
    store = OllamaStore(tmp_path)
    params, config = b'{"num_thread":4}\n', b'{"model_format":"gguf"}\n'
    blobs = [("sha256:" + hashlib.sha256(b).hexdigest(), b) for b in (params, config)]
    body = json.dumps({"schemaVersion": 2, "config": blob(config, "application/vnd.docker.container.image.v1+json"),
                       "layers": [blob(params, "application/vnd.ollama.image.params")]}).encode() + b"\n"
    ref = ModelRef.parse("m:v1-t4")
    assert store.put_model(ref, blobs, body) is True
    with open(store.manifest_path(ref), "rb") as handle:
        assert handle.read() == body  # the exact bytes, final newline included
    assert sorted(p.name for p in (tmp_path / "blobs").iterdir()) == sorted(store.blob_path(d).rsplit("/", 1)[1]
                                                                             for d, _b in blobs)
    assert store.put_model(ref, blobs, body) is False


def test_a_model_made_in_memory_that_fails_leaves_nothing(tmp_path):
    store = OllamaStore(tmp_path)
    params = b'{"num_thread":4}\n'
    missing = blob(b"never written")
    body = json.dumps({"schemaVersion": 2, "config": missing,
                       "layers": [blob(params, "application/vnd.ollama.image.params")]}).encode()
    with pytest.raises(StoreError) as caught:
        store.put_model(ModelRef.parse("m:v1-t4"), [("sha256:" + hashlib.sha256(params).hexdigest(), params)], body)
    assert caught.value.kind == "incomplete"
    assert list((tmp_path / "blobs").iterdir()) == [] and not (tmp_path / "manifests" / "registry.ollama.ai").exists()


def test_unreferenced_names_exactly_the_blobs_no_manifest_uses_shared_ones_kept(tmp_path):
    store, (one, m1), (two, m2) = two_models_sharing_a_layer(tmp_path)
    assert store.unreferenced() == ([], None)

    # the manifest alone goes (what `ollama rm` with a server still holding it, or a crash, leaves behind)
    (tmp_path / "manifests/registry.ollama.ai/team/one/v1").unlink()
    # and an interrupted download of something else is not a blob yet
    partial = tmp_path / "blobs" / ("sha256-" + "e" * 64 + ".partial")
    partial.write_bytes(b"half")
    found, reason = store.unreferenced()
    assert reason is None and found == [(m1["layers"][0]["digest"], len(b"one-weights"))]
    # the config and the shared layer are two's too
    removed, freed, kept = store.prune([d for d, _s in found])
    assert (removed, freed, kept) == ([m1["layers"][0]["digest"]], len(b"one-weights"), None)
    assert store.missing(m2) == [] and partial.read_bytes() == b"half"
    assert store.unreferenced() == ([], None)


def test_unreferenced_refuses_when_a_manifest_cannot_be_read(tmp_path):
    store = OllamaStore(tmp_path)
    mf = manifest(b"one-weights")
    fill(store, mf, contents_of(mf, b"one-weights"))  # blobs no readable manifest names
    bad = tmp_path / "manifests/registry.ollama.ai/team/bad/v1"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    found, reason = store.unreferenced()
    assert found == [] and str(bad) in reason and "unknown" in reason
    assert store.missing(mf) == []  # nothing removed
