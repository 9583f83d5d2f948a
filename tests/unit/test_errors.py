"""One error base: every error the collection raises carries a kind and its context, bounded and
without credentials, for a failed task's `error`."""

from __future__ import annotations

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils import (
    blob_download,
    gguf_header,
    k8s_quantity,
    model_bundle,
    model_info,
    model_ref,
    ollama_api,
    ollama_registry,
    ollama_store,
    preflight,
    sizing,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import (
    BODY_EXCERPT_CHARS,
    CollectionError,
    InputError,
    excerpt,
)


@pytest.mark.parametrize("cls", [ollama_api.OllamaError, model_info.ModelInfoError, gguf_header.GGUFError,
                                 model_bundle.BundleError, ollama_registry.RegistryError, ollama_store.StoreError,
                                 blob_download.DownloadError])
def test_every_error_is_a_collection_error(cls):
    assert issubclass(cls, CollectionError)


@pytest.mark.parametrize("cls", [model_ref.ModelRefError, k8s_quantity.QuantityError, sizing.SizingError,
                                 preflight.PreflightError])
def test_input_errors_are_value_errors_too(cls):
    # the filters and callers that catch ValueError keep working
    assert issubclass(cls, InputError) and issubclass(cls, ValueError)
    assert cls("bad").details() == {"kind": "invalid_input"}


def test_details_hold_what_is_known_and_no_query_string():
    err = ollama_api.OllamaError("pull failed", kind="http", status=500, body=b'{"error":"boom"}',
                                 url="https://cdn.example/blob?X-Signature=secret#frag")
    assert str(err) == "pull failed" and err.kind == "http" and err.status == 500
    assert err.details() == {"kind": "http", "url": "https://cdn.example/blob", "status": 500,
                             "body": '{"error":"boom"}'}


def test_the_body_is_bounded_and_whitespace_collapsed():
    text = excerpt("x\n\n  y " + "z" * 1000)
    assert text.startswith("x y z") and len(text) == BODY_EXCERPT_CHARS and text.endswith("…")
    assert excerpt("") is None and excerpt(None) is None and excerpt(b"  ") is None


def test_subject_fields_are_attributes_and_details():
    err = model_bundle.BundleError("a link", kind="unsafe", member="models/../../etc/passwd")
    assert err.member == "models/../../etc/passwd"
    assert err.details() == {"kind": "unsafe", "member": "models/../../etc/passwd"}
    assert model_bundle.BundleError("x").kind == "invalid" and gguf_header.GGUFError("x").kind == "corrupt"
