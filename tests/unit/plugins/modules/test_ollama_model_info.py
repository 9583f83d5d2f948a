"""ollama_model_info reading a model store directory laid out as Ollama lays it out, and its errors.

The store is written with the collection's own store writer; the store a real Ollama pulled into is
the integration suite's (tests/integration/ollama_modules/test_ollama_model_info_registry_and_store.py).
"""

from __future__ import annotations

import hashlib
import io
import os

import gguf
import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore
from tests.services.models import make_gguf

MODEL = "application/vnd.ollama.image.model"
TEMPLATE = "application/vnd.ollama.image.template"


def descriptor(content: bytes, media_type: str) -> dict:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(content).hexdigest(), "size": len(content)}


def seed(root, name: str, layers: list[tuple[bytes, str]]) -> dict:
    """Write the layers and a manifest naming them into the store at root, as a pull would."""
    store = OllamaStore(str(root))
    config = b'{"model_format":"gguf"}'
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": descriptor(config, "application/vnd.docker.container.image.v1+json"),
        "layers": [descriptor(content, media_type) for content, media_type in layers],
    }
    for content, _type in [(config, "")] + layers:
        desc = descriptor(content, "")
        store.download_blob(desc["digest"], desc["size"], lambda offset, c=content: (io.BytesIO(c[offset:]), offset))
    store.write_manifest(ModelRef.parse(name), manifest)
    return manifest


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return make_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", seed=5)


@pytest.fixture()
def store(tmp_path, tiny_gguf):
    root = tmp_path / "models"
    manifest = seed(root, "unit/tiny:v1", [(tiny_gguf.read_bytes(), MODEL), (b"{{ .Prompt }}", TEMPLATE)])
    return root, manifest


def test_reads_the_model_from_the_store(module_runner, store, tiny_gguf):
    root, manifest = store
    result = module_runner("ollama_model_info", {"name": "unit/tiny:v1", "path": str(root)})
    assert result["failed"] is False and result["changed"] is False, result
    assert result["source"] == "store" and result["name"] == "unit/tiny:v1"
    assert result["manifest_path"] == os.path.join(str(root), "manifests", "registry.ollama.ai", "unit", "tiny", "v1")
    assert result["layers"] == [{"media_type": m["mediaType"], "digest": m["digest"], "size": m["size"]}
                                for m in manifest["layers"]]
    assert result["model_digest"] == manifest["layers"][0]["digest"]
    written = gguf.GGUFReader(str(tiny_gguf))
    assert result["blob_size"] == tiny_gguf.stat().st_size
    assert result["weights_bytes"] == sum(int(t.n_bytes) for t in written.tensors)
    # its header is 8 KB: the first 256 KiB hold it, the rest of the 470 KB file is not read
    assert result["bytes_read"] == 256 * 1024 < result["blob_size"]
    assert result["ranges_read"] == [[0, 256 * 1024]]
    assert result["memory"]["num_ctx"] == 4096 and result["memory"]["kv_cache_bytes"] == 2 * 1024 * 1024
    check = module_runner("ollama_model_info", {"name": "unit/tiny:v1", "path": str(root)}, check_mode=True)
    assert {k: v for k, v in check.items() if k != "warnings"} == {k: v for k, v in result.items() if k != "warnings"}


def test_sizing_options(module_runner, store):
    root, _manifest = store
    result = module_runner("ollama_model_info", {"name": "unit/tiny:v1", "path": str(root), "num_ctx": 1024,
                                                 "num_parallel": 3, "kv_cache_type": "q8_0"})
    # 2 layers x 4 KV heads x 32 = 256 elements a token, q8_0: 256 / 32 x 34 = 272 bytes; x 1024 x 3
    assert result["memory"]["kv_cache_bytes"] == 272 * 1024 * 3
    assert result["memory"]["kv_cache_type"] == "q8_0" and result["memory"]["num_parallel"] == 3


def test_unknown_model_names_model_and_store(module_runner, store):
    root, _manifest = store
    result = module_runner("ollama_model_info", {"name": "unit/absent:v1", "path": str(root)})
    assert result["failed"] is True
    assert "model unit/absent:v1 is not in the store" in result["msg"] and str(root) in result["msg"]
    assert result["error"]["kind"] == "not_found"


def test_missing_store_directory(module_runner, tmp_path):
    result = module_runner("ollama_model_info", {"name": "unit/tiny:v1", "path": str(tmp_path / "nowhere")})
    assert result["failed"] is True and "does not exist" in result["msg"] and "nowhere" in result["msg"]


def test_a_layer_that_is_not_gguf(module_runner, tmp_path):
    root = tmp_path / "models"
    manifest = seed(root, "unit/text:v1", [(b"just some text, no weights\n" * 50, MODEL)])
    result = module_runner("ollama_model_info", {"name": "unit/text:v1", "path": str(root)})
    assert result["failed"] is True and result["error"]["kind"] == "not_gguf"
    assert manifest["layers"][0]["digest"] in result["msg"] and "unit/text:v1" in result["msg"]
    assert "is not a GGUF file" in result["msg"]


def test_a_manifest_without_a_model_layer(module_runner, tmp_path):
    root = tmp_path / "models"
    seed(root, "unit/nomodel:v1", [(b"{{ .Prompt }}", TEMPLATE)])
    result = module_runner("ollama_model_info", {"name": "unit/nomodel:v1", "path": str(root)})
    assert result["failed"] is True
    assert "has no application/vnd.ollama.image.model layer" in result["msg"] and TEMPLATE in result["msg"]


def test_a_missing_blob(module_runner, store):
    root, manifest = store
    os.remove(OllamaStore(str(root)).blob_path(manifest["layers"][0]["digest"]))
    result = module_runner("ollama_model_info", {"name": "unit/tiny:v1", "path": str(root)})
    assert result["failed"] is True and result["error"]["kind"] == "not_found"
    assert "is missing from" in result["msg"] and manifest["layers"][0]["digest"] in result["msg"]


@pytest.mark.parametrize("args,match", [
    ({"name": "http://x/y"}, "contains a URL scheme"),
    ({"name": "ok:v1", "num_ctx": 0}, "num_ctx must be at least 1"),
    ({"name": "ok:v1", "num_parallel": 0}, "num_parallel must be at least 1"),
])
def test_bad_input(module_runner, tmp_path, args, match):
    result = module_runner("ollama_model_info", dict(args, path=str(tmp_path)))
    assert result["failed"] is True and match in result["msg"]
