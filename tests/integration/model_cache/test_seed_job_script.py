"""The seed Job's script, run for real: the Ollama 0.18.3 binary, a temporary store, the real registry.

The Job runs the same file in the ollama/ollama image; here OLLAMA_BIN and OLLAMA_MODELS point at
this machine's binary and a temporary directory. The served models it creates with the real `ollama
create` are the bytes ollama_store_model derives (module_utils/derived_model.py): both seeders agree.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.derived_model import derive
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, served_name
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore
from tests.services.ollama import ollama_bin
from tests.services.process import free_port

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "model_cache" / "files" / "seed_models.sh"


def run_script(tmp_path: Path, models: str, port: int, timeout: float = 300,
               served: str = "") -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),  # the short-lived server's key pair stays here
        "TMPDIR": str(tmp_path),
        "OLLAMA_BIN": ollama_bin(),
        "OLLAMA_MODELS": str(tmp_path / "models"),
        "MODEL_CACHE_MODELS": models,
        "MODEL_CACHE_INSECURE": "true",
        "MODEL_CACHE_PORT": str(port),
        "MODEL_CACHE_START_TIMEOUT": "60",
        "MODEL_CACHE_SERVED_MODELS": served,
    }
    proc = subprocess.Popen(["/bin/sh", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, cwd=tmp_path)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        # the script stops its server on exit; this covers a hung script
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_script_seeds_the_store(tmp_path, tiny_model):
    port = free_port()
    result = run_script(tmp_path, tiny_model.ref, port)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"model-cache: {tiny_model.ref} ready" in result.stdout
    assert "all 1 model(s)" in result.stdout
    host, rest = tiny_model.ref.split("/", 1)
    repo, tag = rest.rsplit(":", 1)
    manifest = tmp_path / "models" / "manifests" / host / repo / tag
    stored = json.loads(manifest.read_text())
    published = [layer["digest"] for layer in tiny_model.manifest["layers"]]
    assert [layer["digest"] for layer in stored["layers"]] == published
    for layer in [stored["config"], *stored["layers"]]:
        blob = tmp_path / "models" / "blobs" / layer["digest"].replace(":", "-")
        assert blob.stat().st_size == layer["size"]
    assert not list((tmp_path / "models" / "blobs").glob("*-partial*"))
    assert port_closed(port), "the script left its ollama serve running"


def test_script_creates_the_served_model_as_the_module_derives_it(tmp_path, tiny_model):
    port = free_port()
    served = served_name(tiny_model.ref, 3)
    result = run_script(tmp_path, tiny_model.ref, port, served=f"{tiny_model.ref} {served} 3\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"model-cache: {served} ready" in result.stdout and "num_thread 3" in result.stdout
    assert "all 2 model(s)" in result.stdout
    store = OllamaStore(str(tmp_path / "models"))
    base = ModelRef.parse(tiny_model.ref)
    derived = derive(store, base, store.read_manifest(base).manifest, {"num_thread": 3})
    assert Path(store.manifest_path(ModelRef.parse(served))).read_bytes() == derived.manifest
    for digest, body in derived.blobs:
        assert Path(store.blob_path(digest)).read_bytes() == body
    assert not list((tmp_path / "models" / "blobs").glob("*-partial*"))
    assert port_closed(port)


@pytest.mark.parametrize("line, said", [
    ("{ref} {ref}-t2", "is not '<base> <served> <num_thread>'"),
    ("{ref} {ref}-t2 2 more", "is not '<base> <served> <num_thread>'"),
    ("{ref} {ref}-t0 0", "num_thread '0' is not a whole number of at least 1"),
    ("{ref} {ref}-t2 02", "num_thread '02' is not a whole number"),
    ("{ref} {ref}-tx two", "num_thread 'two' is not a whole number"),
    ("{ref} {ref} 2", "the served model would overwrite its base"),
    ("{ref} $(touch${{IFS}}pwned) 2", "is not a model name"),
    ("other:v1 other:v1-t2 2", "its base 'other:v1' is not in MODEL_CACHE_MODELS"),
])
def test_script_refuses_a_bad_served_line_before_it_starts(tmp_path, tiny_model, line, said):
    port = free_port()
    result = run_script(tmp_path, tiny_model.ref, port, timeout=30, served=line.format(ref=tiny_model.ref))
    assert result.returncode != 0 and said in result.stderr, result.stderr
    assert "MODEL_CACHE_SERVED_MODELS line" in result.stderr
    assert not (tmp_path / "models").exists() and not (tmp_path / "pwned").exists()
    assert port_closed(port)


def test_script_fails_clearly_for_a_missing_model(tmp_path, tiny_model, registry):
    port = free_port()
    missing = f"{registry.host}/library/no-such-model:v1"
    result = run_script(tmp_path, f"{missing},{tiny_model.ref}", port, served=f"{missing} {missing}-t2 2")
    assert result.returncode != 0
    assert f"{missing} is not in its registry: check the model name and tag" in result.stderr, result.stderr
    assert f"{missing}-t2 not created: its base {missing} was not seeded" in result.stderr
    assert "2 of 3 model(s) not seeded" in result.stderr
    # the other model was still seeded
    assert f"model-cache: {tiny_model.ref} ready" in result.stdout
    assert not (tmp_path / "models" / "manifests" / registry.host / "library" / "no-such-model").exists()
    assert port_closed(port)


@pytest.mark.parametrize("env_models", ["", " , "])
def test_script_refuses_an_empty_model_list(tmp_path, env_models):
    result = run_script(tmp_path, env_models, free_port(), timeout=30)
    assert result.returncode != 0 and "MODEL_CACHE_MODELS is empty" in result.stderr
