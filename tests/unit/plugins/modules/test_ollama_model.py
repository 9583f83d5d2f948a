"""How ollama_model words a failed pull. The server messages below are copies of what Ollama 0.18.3
sends (seen against the real server in the integration tests); no server is involved here."""

from __future__ import annotations

import importlib
import inspect
import json

import yaml

from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import OllamaError
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import PROGRESS_FILE_ENV
from ansible_collections.aiplatform.ollama.plugins.modules.ollama_model import ProgressFile, explain_pull_error

REF = ModelRef.parse("registry.example.com:5000/library/qwen2.5:72b")
HOST = "http://ollama:11434"


def explain(text, **kw):
    return explain_pull_error(OllamaError(text, kind=kw.pop("kind", "stream"), **kw), REF, HOST, insecure=False)


def test_disk_full_names_the_store_and_the_fix():
    msg = explain("write /models/blobs/sha256-abc-partial-3: no space left on device")
    assert "ran out of disk space pulling registry.example.com:5000/library/qwen2.5:72b" in msg
    assert "OLLAMA_MODELS" in msg and HOST in msg


def test_not_in_registry():
    msg = explain("pull model manifest: file does not exist")
    assert msg.startswith("model registry.example.com:5000/library/qwen2.5:72b was not found in registry "
                          "registry.example.com:5000")


def test_registry_unreachable_from_server_points_at_server_proxy():
    msg = explain('pull model manifest: Get "https://registry.example.com:5000/v2/library/qwen2.5/manifests/72b": '
                  "dial tcp: lookup registry.example.com: no such host")
    assert "could not reach registry registry.example.com:5000" in msg
    assert "HTTPS_PROXY in the server's environment" in msg and "insecure=true" in msg


def test_other_errors_keep_the_server_text():
    assert explain("something new").endswith("failed: something new")
    assert "rejected" in explain("invalid model name", kind="http", status=400)


def test_progress_file_is_replaced_whole_and_removed(tmp_path):
    path = tmp_path / "progress.json"
    report = ProgressFile(str(path), every=0)
    report.write({"completed": 1})
    report.write({"completed": 2})
    assert json.loads(path.read_text()) == {"completed": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]
    report.remove()
    assert not path.exists()
    ProgressFile(None).write({"x": 1})  # no file asked for: nothing happens


def test_progress_file_comes_from_the_environment_not_an_option(tmp_path, monkeypatch):
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(tmp_path / "p.json"))
    assert ProgressFile.from_environment().path == str(tmp_path / "p.json")
    monkeypatch.delenv(PROGRESS_FILE_ENV)
    assert ProgressFile.from_environment().path is None
    # the channel between action plugin and module is no user option: neither documented nor accepted
    for name in ("ollama_model", "ollama_store_model"):
        module = importlib.import_module(f"ansible_collections.aiplatform.ollama.plugins.modules.{name}")
        assert "progress_file" not in yaml.safe_load(module.DOCUMENTATION)["options"]
        assert "progress_file" not in inspect.getsource(module.main)
