"""The test services are the real thing: a registry that stores and redirects, an Ollama that infers."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request

import pytest

from tests.services.registry import sha256_file


def _http(url: str, body: dict | None = None, headers: dict | None = None, method: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.read()


def test_registry_serves_pushed_manifest_byte_identical(registry, tiny_model):
    digest, manifest = registry.get_manifest("library/tiny", "latest")
    assert digest == tiny_model.manifest_digest
    assert manifest == tiny_model.manifest
    assert manifest["layers"][0]["mediaType"] == "application/vnd.ollama.image.model"


def test_registry_rejects_manifest_get_without_accept_header(registry, tiny_model):
    with pytest.raises(urllib.error.HTTPError) as err:
        _http(f"{registry.url}/v2/library/tiny/manifests/latest")
    assert err.value.code == 400
    assert b"MANIFEST_INVALID" in err.value.read()


def test_registry_redirects_blob_downloads_to_the_cdn_host(registry, tiny_model, model_factory):
    layer = tiny_model.manifest["layers"][0]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(f"{registry.url}/v2/library/tiny/blobs/{layer['digest']}")
    assert err.value.code == 307
    location = err.value.headers["Location"]
    assert location.startswith(registry.cdn_url + "/docker/registry/v2/blobs/sha256/")
    blob = _http(location)
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == sha256_file(model_factory.tiny(seed=0))


def test_model_factory_is_deterministic(model_factory, tmp_path):
    from tests.services.models import make_gguf

    again = make_gguf(tmp_path / "again.gguf", seed=0)
    other = make_gguf(tmp_path / "other.gguf", seed=1)
    assert sha256_file(again) == sha256_file(model_factory.tiny(seed=0))
    assert sha256_file(other) != sha256_file(again)


def test_ollama_pulls_from_registry_and_generates_tokens(ollama, tiny_model):
    version = _http(f"{ollama.url}/api/version")
    assert json.loads(version)["version"] == "0.18.3"
    pull = ollama.cli("pull", "--insecure", tiny_model.ref)
    assert pull.returncode == 0
    tags = _http(f"{ollama.url}/api/tags")
    assert tiny_model.ref in [m["name"] for m in json.loads(tags)["models"]]
    body = _http(f"{ollama.url}/api/generate", {
        "model": tiny_model.ref, "prompt": "hello world", "stream": False,
        "options": {"num_predict": 8, "temperature": 0, "seed": 42},
    })
    answer = json.loads(body)
    assert answer["done"] is True
    assert answer["eval_count"] > 0
    assert answer["load_duration"] > 0
