"""ollama_bundle pushes into a real registry (CNCF distribution) that requires a login, in front of it a
real nginx that asks for it: HTTP basic auth, or a bearer token from a token service that wants the
basic credentials (as Docker Hub, Harbor and GitLab do). The pushed model is then read back through the
registry API with the credentials, and pulled by a real Ollama 0.18.3.

Ollama 0.18.3 cannot send registry credentials (its pull request's username and password are ignored;
it answers a challenge only with its own signed key), so it pulls from the registry's own, unauthenticated
address: the same storage the authenticated push wrote.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.module_runner import run_module
from tests.services.nginx import nginx
from tests.services.ollama import OllamaServer
from tests.services.process import free_port
from tests.services.registry import MANIFEST_V2, Registry

USER = "pusher"
PASSWORD = "pw-Kd93-push-only"
TOKEN = "tok-Rr51-push"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
UNAUTHORIZED = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
# the registry behind nginx builds upload URLs from the Host it is asked for: the front's own
PROXY = ("proxy_pass http://{backend};", "proxy_set_header Host $http_host;", "proxy_request_buffering off;",
         "proxy_buffering off;", "client_max_body_size 0;")


def server(port: int, backend: str, mode: str, work: Path) -> str:
    proxy = "".join(f"      {line.format(backend=backend)}\n" for line in PROXY)
    if mode == "basic":
        # RFC 2307 {SHA}: a password file nginx reads without an htpasswd tool
        sha = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
        (work / "htpasswd").write_text(f"{USER}:{{SHA}}{sha}\n")
        guard = f'      auth_basic "push"; auth_basic_user_file {work}/htpasswd;\n'
    else:
        guard = (f'      if ($http_authorization != "Bearer {TOKEN}") {{\n'
                 f"        add_header WWW-Authenticate 'Bearer realm=\"http://127.0.0.1:{port}/token\","
                 "service=\"front\"' always;\n"
                 f"        return 401 '{UNAUTHORIZED}';\n      }}\n")
    return (f"    listen 127.0.0.1:{port};\n    default_type application/json;\n"
            "    location = /ready { return 204; }\n"
            f'    location = /token {{ if ($http_authorization != "{BASIC}") {{ return 401 \'{UNAUTHORIZED}\'; }}\n'
            f"      return 200 '{{\"token\":\"{TOKEN}\"}}'; }}\n"
            f"    location /v2/ {{\n{guard}{proxy}    }}\n")


@pytest.fixture(scope="module")
def bundle(registry, tiny_model, tmp_path_factory):
    """The tiny model seeded from the session's registry by ollama_store_model, exported into a bundle."""
    work = tmp_path_factory.mktemp("push-creds-bundle")
    seeded = run_module("ollama_store_model", dict(name=tiny_model.ref, path=str(work / "models"), insecure=True,
                                                   progress_interval=0))
    assert not seeded["failed"], seeded["msg"]
    path = work / "tiny.tar"
    exported = run_module("ollama_bundle", dict(state="exported", path=str(path), store=str(work / "models"),
                                                models=[tiny_model.ref]))
    assert not exported["failed"], exported
    return dict(path=path, digest=exported["models"][0]["digest"])


@pytest.fixture(scope="module", params=["basic", "token"])
def guarded(request, tmp_path_factory):
    """An empty real registry, reachable only through nginx asking for credentials (`mode`)."""
    work = tmp_path_factory.mktemp(f"push-creds-{request.param}")
    with Registry.start(work / "registry") as backend:
        port = free_port()
        (work / "front").mkdir()
        conf = server(port, backend.host, request.param, work / "front")
        with nginx(f"nginx-{request.param}-front", work / "front", conf, ready_url=f"http://127.0.0.1:{port}/ready"):
            yield dict(host=f"127.0.0.1:{port}", backend=backend, mode=request.param)


def pushed_repositories(backend: Registry) -> list:
    root = backend.root / "docker" / "registry" / "v2" / "repositories"
    return sorted(str(p.relative_to(root)) for p in root.rglob("link")) if root.exists() else []


def api_get(url: str, accept: str | None = None) -> tuple[dict, bytes]:
    """GET through the front with the credentials: basic at once, or the token the token service gives."""
    headers = {"Authorization": BASIC}
    if accept:
        headers["Accept"] = accept
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
            return dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        if err.code != 401 or "Bearer" not in err.headers.get("WWW-Authenticate", ""):
            raise
    token_url = url.split("/v2/")[0] + "/token"
    with urllib.request.urlopen(urllib.request.Request(token_url, headers={"Authorization": BASIC})) as resp:
        headers["Authorization"] = "Bearer " + json.loads(resp.read())["token"]
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
        return dict(resp.headers), resp.read()


def test_push_into_a_registry_that_requires_a_login(bundle, guarded, tiny_model, tmp_path):
    args = dict(state="pushed", path=str(bundle["path"]), registry=guarded["host"], insecure=True, timeout=30)
    refused = run_module("ollama_bundle", args)
    assert refused["failed"] and refused["error"]["kind"] == "registry" and refused["error"]["status"] == 401, refused
    assert f"into registry {guarded['host']}" in refused["msg"], refused["msg"]
    assert "Set registry_username and registry_password" in refused["msg"], refused["msg"]
    assert pushed_repositories(guarded["backend"]) == []  # nothing pushed

    creds = dict(args, registry_username=USER, registry_password=PASSWORD)
    pushed = run_module("ollama_bundle", creds)
    assert not pushed["failed"] and pushed["changed"], pushed
    name = f"{guarded['host']}/library/tiny:latest"
    assert [(m["name"], m["action"]) for m in pushed["models"]] == [(name, "pushed")]
    assert PASSWORD not in json.dumps(pushed) and TOKEN not in json.dumps(pushed)

    # the registry API, through the front and with the credentials: the manifest and every blob, by digest
    base = f"http://{guarded['host']}/v2/library/tiny"
    headers, body = api_get(f"{base}/manifests/latest", accept=MANIFEST_V2)
    assert "sha256:" + hashlib.sha256(body).hexdigest() == bundle["digest"] == headers["Docker-Content-Digest"]
    manifest = json.loads(body)
    assert manifest["layers"] == tiny_model.manifest["layers"]
    for item in [manifest["config"], *manifest["layers"]]:
        _headers, data = api_get(f"{base}/blobs/{item['digest']}")
        assert ("sha256:" + hashlib.sha256(data).hexdigest(), len(data)) == (item["digest"], item["size"])

    again = run_module("ollama_bundle", creds)
    assert not again["failed"] and not again["changed"] and again["blobs"] == [], again

    # Ollama pulls what the push stored, from the registry's own address (it cannot log in itself)
    backend = guarded["backend"]
    with OllamaServer.start(tmp_path) as ollama:
        ollama.cli("pull", "--insecure", f"{backend.host}/library/tiny:latest")
        with urllib.request.urlopen(ollama.url + "/api/tags", timeout=30) as resp:
            listed = {m["name"]: m for m in json.loads(resp.read())["models"]}
        assert "sha256:" + listed[f"{backend.host}/library/tiny:latest"]["digest"] == bundle["digest"]
