"""One error base: every error the collection raises carries a kind and its context, bounded and
without credentials, for a failed task's `error`."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils import (
    blob_partial,
    errors,
    gguf_header,
    k8s_quantity,
    model_info,
    model_ref,
    ollama_api,
    ollama_registry,
    ollama_store,
    preflight,
    sizing,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.format import BundleError
from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import (
    BODY_EXCERPT_CHARS,
    CollectionError,
    InputError,
    excerpt,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef
from ansible_collections.aiplatform.ollama.plugins.module_utils.node_profile import NODE_ROOT_ENV
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore
from tests.module_runner import run_module


@pytest.mark.parametrize("cls", [ollama_api.OllamaError, model_info.ModelInfoError, gguf_header.GGUFError,
                                 BundleError, ollama_registry.RegistryError, ollama_store.StoreError,
                                 blob_partial.DownloadError])
def test_every_error_is_a_collection_error(cls):
    assert issubclass(cls, CollectionError)


@pytest.mark.parametrize("cls", [model_ref.ModelRefError, k8s_quantity.QuantityError, sizing.SizingError,
                                 preflight.PreflightError])
def test_input_errors_are_value_errors_too(cls):
    # the filters and callers that catch ValueError keep working
    assert issubclass(cls, InputError) and issubclass(cls, ValueError)
    assert cls("bad").details() == {"kind": "invalid_input"}


def test_errors_is_the_bottom_layer():
    # every module_utils file imports errors.py: it may import nothing of the collection, or a cycle waits
    tree = ast.parse(Path(errors.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and "aiplatform" in name], imported


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
    err = BundleError("a link", kind="unsafe", member="models/../../etc/passwd")
    assert err.member == "models/../../etc/passwd"
    assert err.details() == {"kind": "unsafe", "member": "models/../../etc/passwd"}
    assert BundleError("x").kind == "invalid" and gguf_header.GGUFError("x").kind == "corrupt"


MODULES = sorted((Path(__file__).resolve().parents[4] / "plugins" / "modules").glob("*.py"))
SAMPLES = Path(__file__).resolve().parents[2] / "node_samples"


def exit_calls(source):
    """[(top-level function or class, method)] of every `.fail_json(`/`.exit_json(` call in a module's source."""
    calls = []
    for node in ast.parse(source).body:
        for sub in ast.walk(node):
            if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
                    and sub.func.attr in ("fail_json", "exit_json")):
                calls.append((getattr(node, "name", None), sub.func.attr))
    return calls


def catches_collection_error(source):
    main = next(node for node in ast.parse(source).body if getattr(node, "name", None) == "main")
    return any(isinstance(sub, ast.ExceptHandler) and isinstance(sub.type, ast.Name)
               and sub.type.id == "CollectionError" for sub in ast.walk(main))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_a_module_exits_once_from_main(path):
    # a module whose methods exit themselves skips the one place that adds `error` and the failed result's keys
    source = path.read_text()
    calls = exit_calls(source)
    assert [call for call in calls if call[0] != "main"] == [], f"{path.name} exits outside main()"
    assert [method for _where, method in calls].count("exit_json") == 1
    assert "fail_json" in [method for _where, method in calls] and catches_collection_error(source)


def test_exit_calls_finds_an_exit_outside_main():
    # the check above must be able to fail: an exit in a helper is reported with the helper's name
    source = "def helper(module):\n    module.fail_json(msg='x')\n\n\ndef main():\n    module.exit_json()\n"
    assert exit_calls(source) == [("helper", "fail_json"), ("main", "exit_json")]


def test_store_model_refuses_an_option_with_the_error_and_creates_nothing(tmp_path):
    store = tmp_path / "models"
    out = run_module("ollama_store_model", {"name": ["tiny"], "path": str(store), "parts": 0})
    assert out["failed"] and out["changed"] is False
    assert out["msg"] == "parts must be at least 1, got 0: it is a number of parallel connections"
    assert out["error"] == {"kind": "invalid_input"}
    assert not store.exists()


def test_store_model_failure_keeps_the_model_results_and_adds_the_error(tmp_path):
    # a real store whose manifest names a blob that is not there: verified without repair fails on it
    store = OllamaStore(str(tmp_path / "models"))
    ref = ModelRef.parse("registry.example:5000/library/tiny:latest")
    blob = "sha256:" + "ab" * 32
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": blob, "size": 3, "mediaType": "application/vnd.docker.container.image.v1+json"},
                "layers": []}
    manifest_path = Path(store.manifest_path(ref))
    manifest_path.parent.mkdir(parents=True)
    manifest_path.write_text(json.dumps(manifest))

    out = run_module("ollama_store_model", {"name": [ref.full], "path": store.root, "state": "verified"})
    assert out["failed"] and out["changed"] is False and out["action"] == "none"
    assert out["msg"].startswith(f"{ref.short} in {store.root} has blobs missing: {blob}. Set repair: true")
    assert out["blobs_missing"] == [blob] and out["models"][0]["blobs_missing"] == [blob]
    assert out["error"] == {"kind": "damaged", "path": store.root}


def test_node_profile_facts_failure_carries_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv(NODE_ROOT_ENV, str(SAMPLES / "xeon-e5-2680v2-1s-noavx2"))
    out = run_module("node_profile_facts", {})
    assert out["failed"] and out["changed"] is False and out["isa_missing"] == ["avx2"]
    assert out["error"] == {"kind": "isa_missing", "cpu_model": out["ollama_node_profile"]["cpu_model"]}
    assert "E5-2680 v2" in out["error"]["cpu_model"]

    monkeypatch.setenv(NODE_ROOT_ENV, str(tmp_path))
    out = run_module("node_profile_facts", {"measure_bandwidth": True})
    assert out["failed"] and out["msg"].startswith("measure_bandwidth measures the machine the module runs on")
    assert out["error"] == {"kind": "invalid_input"}
