"""The registry v2 client against the real registry and its CDN redirect."""

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import RegistryClient, RegistryError


@pytest.fixture(scope="module")
def model(registry, model_factory):
    return registry.push_model(model_factory.tiny(seed=81), name="itest/registry", tag="v1")


def test_resolve_returns_the_pushed_manifest(registry, model):
    client = RegistryClient(registry.host, insecure=True)
    found = client.resolve("itest/registry", "v1")
    assert found["digest"] == model.manifest_digest
    assert found["manifest"] == model.manifest and found["size"] == model.size
    # the test registry pushes Go-style compact JSON, so Ollama's re-encoding has the same digest
    assert found["ollama_digest"] == model.manifest_digest


def test_blob_follows_the_redirect_to_the_cdn(registry, model):
    layer = model.manifest["layers"][0]
    client = RegistryClient(registry.host, insecure=True)
    resp = client.open_blob("itest/registry", layer["digest"])
    try:
        assert resp.geturl().startswith(registry.cdn_url)
        digest = hashlib.sha256()
        for chunk in iter(lambda: resp.read(1 << 16), b""):
            digest.update(chunk)
    finally:
        resp.close()
    assert "sha256:" + digest.hexdigest() == layer["digest"]
    ranged = client.open_blob("itest/registry", layer["digest"], offset=layer["size"] - 10)
    try:
        assert len(ranged.read()) == 10
    finally:
        ranged.close()


def test_missing_manifest_and_blob(registry, model):
    client = RegistryClient(registry.host, insecure=True)
    with pytest.raises(RegistryError) as err:
        client.resolve("itest/registry", "nope")
    assert err.value.kind == "not_found" and "MANIFEST_UNKNOWN" in str(err.value)
    with pytest.raises(RegistryError) as err:
        client.open_blob("itest/registry", "sha256:" + "0" * 64)
    assert err.value.kind == "not_found"


def test_https_to_a_plain_http_registry_hints_insecure(registry):
    with pytest.raises(RegistryError) as err:
        RegistryClient(registry.host, timeout=5).resolve("itest/registry", "v1")
    assert err.value.kind == "unreachable" and "insecure=true" in str(err.value)
