"""ollama_model against a real Ollama 0.18.3 and a real registry with a CDN redirect.

The sequence follows community.docker's: check mode, real run, idempotent check, idempotent run.
Models are published under their own namespace so other suites sharing the server are unaffected.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.services.ollama import OllamaServer, ollama_bin


def has_blob(ollama, digest: str) -> bool:
    try:
        urllib.request.urlopen(urllib.request.Request(f"{ollama.url}/api/blobs/{digest}", method="HEAD")).close()
        return True
    except urllib.error.HTTPError as err:
        assert err.code == 404
        return False


def tags(ollama) -> dict:
    with urllib.request.urlopen(ollama.url + "/api/tags", timeout=30) as resp:
        return {m["name"]: m for m in json.loads(resp.read())["models"]}


@pytest.fixture(scope="module")
def published(registry, model_factory):
    """One model for the pull sequence, as <registry>/itest/pull-seq:v1."""
    return registry.push_model(model_factory.tiny(seed=11), name="itest/pull-seq", tag="v1")


def test_present_sequence_check_real_idempotent(module_runner, ollama, published):
    args = dict(name=published.ref, host=ollama.url, insecure=True, progress_interval=0)

    check = module_runner("ollama_model", args, check_mode=True)
    assert check["changed"] is True and check["action"] == "pulled", check
    assert published.ref not in tags(ollama), "check mode must not pull"
    assert check["diff"]["before"] == {}
    assert check["diff"]["after"]["size"] == published.size

    layers = published.manifest["layers"] + [published.manifest["config"]]
    already = sum(layer["size"] for layer in layers if has_blob(ollama, layer["digest"]))
    real = module_runner("ollama_model", args)
    assert real["changed"] is True, real
    local = tags(ollama)[published.ref]
    assert real["digest"] == "sha256:" + local["digest"]
    assert real["size"] == local["size"] == published.size
    # blobs other models share (the template) were already in the store and did not move
    assert real["bytes_transferred"] == published.size - already > 0
    assert real["seconds"] > 0 and real["bytes_per_second"] > 0
    assert real["diff"]["after"]["digest"] == real["digest"]

    again_check = module_runner("ollama_model", args, check_mode=True)
    assert again_check["changed"] is False, again_check
    again = module_runner("ollama_model", args)
    assert again["changed"] is False and again["action"] == "none", again
    assert again["digest"] == real["digest"] and again["bytes_transferred"] == 0


def test_latest_pulls_only_after_a_new_push_of_the_tag(module_runner, ollama, registry, model_factory):
    first = registry.push_model(model_factory.tiny(seed=21), name="itest/latest-seq", tag="latest")
    args = dict(name=first.ref, state="latest", host=ollama.url, insecure=True, progress_interval=0)
    pulled = module_runner("ollama_model", args)
    assert pulled["changed"] is True, pulled
    # Ollama stores its own encoding of the manifest; the module compares against that digest
    assert pulled["registry_digest"] == pulled["digest"] == "sha256:" + tags(ollama)[first.ref]["digest"]

    same = module_runner("ollama_model", args)
    assert same["changed"] is False, same

    second = registry.push_model(model_factory.tiny(seed=22), name="itest/latest-seq", tag="latest")
    assert second.manifest_digest != first.manifest_digest
    would = module_runner("ollama_model", args, check_mode=True)
    assert would["changed"] is True and would["registry_digest"] != pulled["digest"], would
    assert would["diff"]["before"]["digest"] == pulled["digest"]
    assert would["diff"]["after"]["digest"] == would["registry_digest"]
    assert tags(ollama)[first.ref]["digest"] == pulled["digest"].split(":")[1], "check mode must not pull"

    updated = module_runner("ollama_model", args)
    assert updated["changed"] is True, updated
    assert updated["digest"] == updated["registry_digest"] != pulled["digest"]
    # the template layer is shared by both versions: only the new weights and config moved
    assert 0 < updated["bytes_transferred"] < second.size
    assert module_runner("ollama_model", args)["changed"] is False


def test_absent_deletes_then_reports_no_change(module_runner, ollama, registry, model_factory):
    model = registry.push_model(model_factory.tiny(seed=31), name="itest/absent-seq", tag="v1")
    base = dict(name=model.ref, host=ollama.url, insecure=True, progress_interval=0)
    assert module_runner("ollama_model", base)["changed"] is True

    check = module_runner("ollama_model", dict(base, state="absent"), check_mode=True)
    assert check["changed"] is True and model.ref in tags(ollama)
    gone = module_runner("ollama_model", dict(base, state="absent"))
    assert gone["changed"] is True and gone["action"] == "deleted", gone
    assert gone["diff"]["before"]["size"] == model.size and gone["diff"]["after"] == {}
    assert model.ref not in tags(ollama)
    again = module_runner("ollama_model", dict(base, state="absent"))
    assert again["changed"] is False, again


@pytest.mark.parametrize(
    "args, expected",
    [
        (dict(name="../etc"), "invalid namespace '..'"),
        (dict(name=""), "model name is empty"),
        (dict(name="a/b/c/d:e"), "4 path segments"),
        (dict(name="itest/x", host="not a url"), "host 'not a url' is not a URL"),
        (dict(name="itest/x", host="ftp://127.0.0.1:11434"), "is not an http(s) URL"),
    ],
)
def test_bad_inputs_fail_before_any_request(module_runner, ollama, args, expected):
    before = tags(ollama)
    args = dict({"host": ollama.url, "progress_interval": 0}, **args)
    result = module_runner("ollama_model", args)
    assert result["failed"] and expected in result["msg"], result
    assert result.get("changed") is False
    assert tags(ollama) == before


def test_model_missing_from_registry_names_model_registry_and_server(module_runner, ollama, registry):
    before = tags(ollama)
    ref = f"{registry.host}/itest/never-pushed:v9"
    result = module_runner("ollama_model", dict(name=ref, host=ollama.url, insecure=True, progress_interval=0))
    assert result["failed"], result
    assert f"model {ref} was not found in registry {registry.host}" in result["msg"]
    assert ollama.url in result["msg"] and "file does not exist" in result["msg"]
    # a failed pull did nothing it can vouch for, and says why in a form a playbook can branch on
    assert result["changed"] is False and result["action"] == "none", result
    # the server answered 200 and then reported the error inside its progress stream
    assert result["error"]["kind"] == "stream" and result["error"]["url"].endswith("/api/pull"), result
    latest = module_runner("ollama_model", dict(name=ref, state="latest", host=ollama.url, insecure=True))
    assert latest["failed"] and "HTTP 404" in latest["msg"] and "MANIFEST_UNKNOWN" in latest["msg"], latest
    assert tags(ollama) == before


def test_registry_unreachable_from_the_server(module_runner, ollama):
    from tests.services.process import free_port

    ref = f"127.0.0.1:{free_port()}/itest/nowhere:v1"
    result = module_runner("ollama_model", dict(name=ref, host=ollama.url, insecure=True, progress_interval=0))
    assert result["failed"], result
    assert "could not reach registry" in result["msg"] and "connection refused" in result["msg"]
    assert "HTTPS_PROXY" in result["msg"]


def test_plain_http_registry_without_insecure_says_so(module_runner, ollama, registry, model_factory):
    model = registry.push_model(model_factory.tiny(seed=41), name="itest/needs-insecure", tag="v1")
    result = module_runner("ollama_model", dict(name=model.ref, host=ollama.url, progress_interval=0))
    assert result["failed"] and "insecure=true" in result["msg"], result


def test_server_unreachable_fails_fast_naming_the_host(module_runner):
    from tests.services.process import free_port

    host = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = module_runner("ollama_model", dict(name="qwen2.5", host=host, progress_interval=0))
    assert time.monotonic() - started < 5
    assert result["failed"] and f"cannot reach the Ollama server at {host}" in result["msg"], result
    assert "qwen2.5:latest" in result["msg"]
    assert result["error"] == {"kind": "unreachable", "url": f"{host}/api/tags"} and result["action"] == "none"


def unshare_argv() -> list[str]:
    """A private mount namespace; not root, inside a user namespace, which grants the mount there."""
    return ["unshare", *([] if os.geteuid() == 0 else ["--user", "--map-root-user"]), "--mount",
            "--propagation", "private", "--"]


class SmallStoreServer(OllamaServer):
    """`ollama serve` in a mount namespace of its own with its store there a 2 MiB tmpfs: the mount exists
    only for the server and vanishes with it; the machine's mount table never holds it, so no test failure
    or kill can leave it behind. unshare and sh exec, so the server keeps the pid (and process group) that
    OllamaServer stops."""

    def __init__(self, workdir: Path, env: dict | None = None, models_dir: Path | None = None):
        super().__init__(workdir, {**(env or {}), "STORE": str(models_dir), "OLLAMA_REAL_BIN": ollama_bin()},
                         models_dir)
        workdir.mkdir(parents=True, exist_ok=True)
        serve = workdir / "serve-on-small-tmpfs"
        serve.write_text("#!/bin/sh\n"
                         f"exec {shlex.join(unshare_argv())} sh -c "
                         """'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$1" serve' "$STORE" "$OLLAMA_REAL_BIN"\n""")
        serve.chmod(0o755)
        self.binary = str(serve)  # run as `<binary> serve`; this test uses no other command of the CLI


def test_disk_full_on_the_servers_store_is_reported(module_runner, registry, model_factory, tmp_path):
    """A real ENOSPC: the server's model store on a 2 MiB tmpfs, a 6 MiB model pulled into it."""
    store = tmp_path / "small"
    store.mkdir()
    if not shutil.which("unshare"):
        pytest.fail("unshare is needed to give the server a small tmpfs store of its own: install util-linux")
    probe = subprocess.run([*unshare_argv(), "mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(store)],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs in a private mount namespace ({shlex.join(unshare_argv())}): "
                    f"{probe.stderr.strip()}. Fix: run the tests as root, or allow unprivileged user namespaces "
                    "(user.max_user_namespaces > 0; on Debian/Ubuntu also kernel.unprivileged_userns_clone=1)")
    model = registry.push_model(model_factory.tiny(seed=51), name="itest/too-big", tag="v1",
                                template="{{ .Prompt }}" + " " * (6 << 20))

    with SmallStoreServer.start(tmp_path / "server", models_dir=store) as server:
        assert not os.path.ismount(store), "the server's tmpfs is visible outside its mount namespace"
        result = module_runner("ollama_model", dict(name=model.ref, host=server.url, insecure=True,
                                                    progress_interval=0))
        assert result["failed"], result
        assert "ran out of disk space" in result["msg"] and "no space left on device" in result["msg"], result
        assert server.url in result["msg"]
        # the server wrote into its tmpfs: the directory under it, as this machine sees it, stays empty
        assert not any(store.iterdir())
