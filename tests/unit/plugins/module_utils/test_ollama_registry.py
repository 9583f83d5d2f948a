"""Registry auth and redirects. The Debian registry of the integration tests runs without a token
service, so the bearer challenge is exercised here against a small stub HTTP server (a stub, not the
real registry): it challenges like registry.ollama.ai and Docker Hub do and records what it received."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (
    RegistryClient,
    RegistryError,
    ollama_manifest_digest,
    parse_challenge,
)

MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:c", "size": 3},
    "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:m", "size": 5}],
}


class Stub(BaseHTTPRequestHandler):
    seen: list = []
    blob_host = ""

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        Stub.seen.append((self.headers.get("Host"), self.path, self.headers.get("Authorization")))
        host = f"127.0.0.1:{self.server.server_address[1]}"
        auth = self.headers.get("Authorization") or ""
        if self.path.startswith("/token"):
            if auth != "Basic " + base64.b64encode(b"user:secret").decode():
                return self.reply(401)
            return self.reply(200, json.dumps({"token": "tok"}).encode())
        if self.path.startswith("/v2/private/m/manifests/"):
            if auth != "Bearer tok":
                return self.reply(401, headers={"WWW-Authenticate": (
                    f'Bearer realm="http://{host}/token",service="stub",scope="repository:private/m:pull"')})
            return self.reply(200, json.dumps(MANIFEST).encode(),
                              {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
        if self.path.startswith("/v2/basic/m/manifests/"):
            if not auth.startswith("Basic "):
                return self.reply(401, headers={"WWW-Authenticate": 'Basic realm="stub"'})
            return self.reply(200, json.dumps(MANIFEST).encode())
        if self.path.startswith("/v2/private/m/blobs/"):
            if auth != "Bearer tok":
                return self.reply(401, headers={"WWW-Authenticate": (
                    f'Bearer realm="http://{host}/token",service="stub"')})
            return self.reply(307, headers={"Location": f"http://{Stub.blob_host}/cdn/blob?sig=1"})
        if self.path.startswith("/cdn/blob"):
            return self.reply(200, b"hello")
        return self.reply(404, json.dumps({"errors": [{"code": "NAME_UNKNOWN", "message": "no"}]}).encode())


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    Stub.seen = []
    Stub.blob_host = f"localhost:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_bearer_challenge_with_basic_credentials_for_the_token(stub):
    client = RegistryClient(stub, insecure=True, username="user", password="secret")
    found = client.resolve("private/m", "v1")
    assert found["manifest"] == MANIFEST
    assert found["digest"] == "sha256:" + hashlib.sha256(json.dumps(MANIFEST).encode()).hexdigest()
    assert [path.split("?")[0] for _, path, _ in Stub.seen] == [
        "/v2/private/m/manifests/v1", "/token", "/v2/private/m/manifests/v1"]
    assert "scope=repository%3Aprivate%2Fm%3Apull" in Stub.seen[1][1]


def test_bearer_challenge_without_credentials_says_to_set_them(stub):
    with pytest.raises(RegistryError) as err:
        RegistryClient(stub, insecure=True).resolve("private/m", "v1")
    assert err.value.kind == "auth" and "set registry credentials" in str(err.value)


def test_basic_challenge(stub):
    assert RegistryClient(stub, insecure=True, username="u", password="p").resolve("basic/m", "t")["size"] == 8
    with pytest.raises(RegistryError) as err:
        RegistryClient(stub, insecure=True).resolve("basic/m", "t")
    assert "requires authentication" in str(err.value)


def test_blob_redirect_to_another_host_carries_no_credentials(stub):
    client = RegistryClient(stub, insecure=True, username="user", password="secret")
    resp = client.open_blob("private/m", "sha256:m")
    assert resp.read() == b"hello"
    cdn = [entry for entry in Stub.seen if entry[1].startswith("/cdn/")]
    assert cdn and cdn[0][0].startswith("localhost:") and cdn[0][2] is None


def test_not_found_carries_registry_error_code(stub):
    with pytest.raises(RegistryError) as err:
        RegistryClient(stub, insecure=True).resolve("other/m", "t")
    assert err.value.kind == "not_found" and "NAME_UNKNOWN" in str(err.value)


def test_challenge_parsing():
    scheme, params = parse_challenge('Bearer realm="https://ollama.com:443/token",service="ollama.com",scope="x"')
    assert scheme == "bearer" and params == {"realm": "https://ollama.com:443/token", "service": "ollama.com",
                                             "scope": "x"}
    assert parse_challenge(None) == (None, {})


def test_ollama_manifest_digest_is_go_encoding():
    pretty = dict(MANIFEST, layers=[dict(MANIFEST["layers"][0], **{"from": ""})])
    go = ('{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
          '"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:c","size":3},'
          '"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:m","size":5}]}')
    assert ollama_manifest_digest(pretty) == "sha256:" + hashlib.sha256(go.encode()).hexdigest()
