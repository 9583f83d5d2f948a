"""RegistryBlobSource, the registry side of a download in ranged parts, against stand-in HTTP servers (the standard
library's): what real registries and CDNs do not do on demand. A CDN that answers 206 without saying which bytes,
a signed URL that expires in the middle of a download, and where the registry's credentials go on the direct
requests. The real registry, its CDN redirect and nginx are in tests/integration/model_cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (
    RegistryBlobSource,
    RegistryClient,
    RegistryError,
)

BLOB = bytes(range(256)) * 4096  # 1 MiB
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class StandIn(BaseHTTPRequestHandler):
    """Answers as `self.server.behaviour` says, and records each request's path and headers."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - the name http.server calls
        server = self.server
        server.seen.append((self.path, dict(self.headers)))
        status, headers, body = server.behaviour(self)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def stand_in(behaviour, host="127.0.0.1"):
    server = ThreadingHTTPServer((host, 0), StandIn)
    server.behaviour, server.seen = behaviour, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def ranged(handler, honour=True, content_range=True):
    header = handler.headers.get("Range")
    if not header or not honour:
        return 200, {}, BLOB
    start, end = (int(v) for v in header.split("=")[1].split("-"))
    headers = {"Content-Range": f"bytes {start}-{end}/{len(BLOB)}"} if content_range else {}
    return 206, headers, BLOB[start:end + 1]


def read(answer):
    stream, begins, stops = answer
    try:
        return stream.read(), begins, stops
    finally:
        stream.close()


def test_a_206_without_content_range_is_not_trusted(tmp_path):
    with stand_in(lambda h: ranged(h, content_range=False)) as registry:
        client = RegistryClient(f"127.0.0.1:{registry.server_port}", insecure=True, timeout=5)
        source = RegistryBlobSource(client, "library/tiny", DIGEST, len(BLOB))
        body, begins, stops = read(source.open(4096, 8192))
    assert (begins, stops) == (0, len(BLOB)) and body == BLOB  # the whole blob, asked for again without Range
    assert [headers.get("Range") for _path, headers in registry.seen] == ["bytes=4096-8191", None]


def test_parts_go_to_the_cdn_without_the_registry_credentials_and_a_stale_url_is_found_anew():
    expired = {"after": None}

    def cdn(handler):
        if expired["after"] is not None and handler.path.endswith("?sig=old"):
            return 403, {}, b"signature expired"
        return ranged(handler)

    with stand_in(cdn, host="localhost") as blob_host:
        signed = {"query": "sig=old"}

        def registry(handler):
            if handler.headers.get("Authorization") != "Basic dXNlcjpzZWNyZXQ=":
                return 401, {"WWW-Authenticate": 'Basic realm="registry"'}, b""
            location = f"http://localhost:{blob_host.server_port}/blob?{signed['query']}"
            return 307, {"Location": location}, b""

        with stand_in(registry) as reg:
            client = RegistryClient(f"127.0.0.1:{reg.server_port}", insecure=True, username="user",
                                    password="secret", timeout=5)
            source = RegistryBlobSource(client, "library/tiny", DIGEST, len(BLOB))
            assert read(source.open(0, 4096)) == (BLOB[:4096], 0, 4096)
            assert read(source.open(4096, 8192)) == (BLOB[4096:8192], 4096, 8192)
            registry_requests = len(reg.seen)
            expired["after"] = True
            signed["query"] = "sig=new"
            assert read(source.open(8192, 12288)) == (BLOB[8192:12288], 8192, 12288)
    # the second part went straight to the URL the registry redirected to; the third found a new one through the
    # registry (its basic-auth challenge, then the request with the credentials)
    assert registry_requests == 2 and len(reg.seen) == 4
    cdn_paths = [path for path, _headers in blob_host.seen]
    assert cdn_paths == ["/blob?sig=old", "/blob?sig=old", "/blob?sig=old", "/blob?sig=new"]
    assert all("Authorization" not in headers for _path, headers in blob_host.seen)
    assert [headers["Range"] for _path, headers in blob_host.seen] == [
        "bytes=0-4095", "bytes=4096-8191", "bytes=8192-12287", "bytes=8192-12287"]


def test_a_registry_that_serves_blobs_itself_keeps_its_credentials_for_the_parts():
    def registry(handler):
        if handler.headers.get("Authorization") != "Basic dXNlcjpzZWNyZXQ=":
            return 401, {"WWW-Authenticate": 'Basic realm="registry"'}, b""
        return ranged(handler)

    with stand_in(registry) as reg:
        client = RegistryClient(f"127.0.0.1:{reg.server_port}", insecure=True, username="user", password="secret",
                                timeout=5)
        source = RegistryBlobSource(client, "library/tiny", DIGEST, len(BLOB))
        assert read(source.open(0, 1024))[0] == BLOB[:1024]
        assert read(source.open(1024, 2048))[0] == BLOB[1024:2048]
    assert [headers.get("Authorization") for _path, headers in reg.seen] == [
        None, "Basic dXNlcjpzZWNyZXQ=", "Basic dXNlcjpzZWNyZXQ="]


def test_errors_that_another_attempt_may_cure_are_retryable():
    with stand_in(lambda h: (503, {}, b"busy")) as reg:
        client = RegistryClient(f"127.0.0.1:{reg.server_port}", insecure=True, timeout=5)
        source = RegistryBlobSource(client, "library/tiny", DIGEST, len(BLOB))
        with pytest.raises(RegistryError) as err:
            source.open(0, 1024)
    assert err.value.status == 503 and source.retryable(err.value)
    assert not source.retryable(RegistryError("gone", kind="not_found", status=404))
    assert source.retryable(RegistryError("no route", kind="unreachable"))
