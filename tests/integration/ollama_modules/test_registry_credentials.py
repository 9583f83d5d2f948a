"""Registry credentials go only where they belong, checked against a real nginx that plays a registry
and its token service and writes the Authorization header of every request it receives to its access
log, which the tests read.

One nginx listens on three ports of 127.0.0.1: P (plain HTTP, the registry), Q (plain HTTP: token
service and mirror) and S (TLS with a certificate of a CA made for the test). An origin is scheme, host
name and port, so http://127.0.0.1:P and http://localhost:P are two hosts to the client, as are two
ports or two schemes: that is how one nginx plays registry, token service, mirror and CDN.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (
    MANIFEST_V2,
    RegistryClient,
    RegistryError,
)
from tests.services.certs import make_ca_and_server_cert
from tests.services.nginx import nginx, nginx_bin
from tests.services.process import ManagedProcess, free_port

USER = "puller"
PASSWORD = "pw-Zq81-must-not-leak"
TOKEN = "tok-Jm42-must-not-leak"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
# what must never show up in a module result, warning or message: the password, the header that
# carries it (base64 hides nothing) and the bearer token
SECRETS = (PASSWORD, BASIC.split()[1], TOKEN)
SIGNATURE = "sig-Xv77-signed-url"  # a CDN's signed query string, a short-lived credential too

UNAUTHORIZED = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
DENIED = '{"errors":[{"code":"DENIED","message":"signature expired"}]}'

CONFIG_BLOB = b'{"model_format":"gguf","model_family":"llama","architecture":"amd64","os":"linux"}'
# small: nginx answers with it from its configuration, where a string is at most 4 KiB
WEIGHTS_BLOB = b"weights " * 256
# one blob per redirect shape, so each has a digest (and a route) of its own
BLOBS = {shape: f"{shape} blob ".encode() * 64
         for shape in ("cross", "same", "chain", "tls", "tlsafterhop", "expired", "deadhost")}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_for(blobs: list[bytes]) -> str:
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest(CONFIG_BLOB),
                   "size": len(CONFIG_BLOB)},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest(b), "size": len(b)}
                   for b in blobs],
    }, separators=(",", ":"))


# every request with its scheme, host and Authorization header: where the credentials went
CREDS_LOG = """\
  log_format creds escape=json
    '{{"scheme":"$scheme","host":"$http_host","uri":"$request_uri","status":"$status","auth":"$http_authorization"}}';
  access_log {work}/creds.log creds;"""
SERVER = """\
    listen 127.0.0.1:{p};
    listen 127.0.0.1:{q};
    listen 127.0.0.1:{s} ssl;
    ssl_certificate {work}/server.pem;
    ssl_certificate_key {work}/server.key;
    default_type application/json;
    # a relative Location stays relative, as registries send it: the client resolves it
    absolute_redirect off;
{locations}"""


def location(match: str, *lines: str) -> str:
    return f"    location {match} {{\n" + "".join(f"      {line}\n" for line in lines) + "    }\n"


def bearer(realm: str) -> tuple[str, ...]:
    """How a registry answers a request without its token: 401 and a challenge naming the token service."""
    return (
        f'if ($http_authorization != "Bearer {TOKEN}") {{',
        f"  add_header WWW-Authenticate 'Bearer realm=\"{realm}\",service=\"recording-registry\"' always;",
        f"  return 401 '{UNAUTHORIZED}';",
        "}",
    )


def body(data: bytes, media_type: str = "application/octet-stream") -> tuple[str, ...]:
    return (f"default_type {media_type};", f"return 200 '{data.decode()}';")


@dataclass
class RecordingRegistry:
    work: Path
    p: int
    q: int
    s: int
    ca: str
    proc: ManagedProcess | None = None

    @property
    def plain(self) -> str:
        return f"127.0.0.1:{self.p}"

    @property
    def tls(self) -> str:
        return f"127.0.0.1:{self.s}"

    @property
    def plain_realm(self) -> str:
        return f"http://127.0.0.1:{self.q}/token"

    def locations(self) -> str:
        p, q, s = self.p, self.q, self.s
        tls_realm = f"https://localhost:{s}/token"
        out = [
            location("/__barrier__/", "return 204;"),
            # the token service: a token for the right basic credentials, 401 for anything else
            location("= /token", f'if ($http_authorization != "{BASIC}") {{ return 401 \'{UNAUTHORIZED}\'; }}',
                     f"return 200 '{{\"token\":\"{TOKEN}\"}}';"),
            location("= /token-elsewhere", f"return 307 http://localhost:{q}/token$is_args$args;"),
            location("= /token-moved", "return 307 /token$is_args$args;"),
        ]
        model = manifest_for([WEIGHTS_BLOB])
        # repositories that differ only in the token service their challenge names
        for repo, realm in (("plainrealm", self.plain_realm), ("tlsrealm", tls_realm),
                            ("realmcross", f"http://127.0.0.1:{q}/token-elsewhere"),
                            ("realmsame", f"http://127.0.0.1:{q}/token-moved")):
            out.append(location(f"= /v2/creds/{repo}/manifests/v1", *bearer(realm), *body(model.encode(), MANIFEST_V2)))
        # tlsrealm's blobs come from a CDN at another host name over TLS, with a signed URL
        for blob in (CONFIG_BLOB, WEIGHTS_BLOB):
            hexdigest = digest(blob).split(":")[1]
            out.append(location(f"= /v2/creds/tlsrealm/blobs/{digest(blob)}", *bearer(tls_realm),
                                f"return 307 https://localhost:{s}/cdn/{hexdigest}?{SIGNATURE};"))
            out.append(location(f"= /cdn/{hexdigest}", *body(blob)))

        # creds/m: the redirect shapes, behind the plain token service
        realm = self.plain_realm
        manifest = body(model.encode(), MANIFEST_V2)
        out += [
            location("= /v2/creds/m/manifests/v1", *bearer(realm), *manifest),
            location("= /v2/creds/m/manifests/moved", *bearer(realm), "return 307 /v2/creds/m/manifests/v1;"),
            location("= /v2/creds/m/manifests/cross", *bearer(realm),
                     f"return 307 http://localhost:{p}/mirror/manifests/v1;"),
            location("= /v2/creds/m/manifests/otherport", *bearer(realm),
                     f"return 302 http://127.0.0.1:{q}/mirror/manifests/v1;"),
            location("= /v2/creds/m/manifests/loop", *bearer(realm), "return 307 /v2/creds/m/manifests/loop;"),
            location("= /v2/creds/m/manifests/file", *bearer(realm), "return 302 file:///etc/hostname;"),
            location("= /mirror/manifests/v1", *manifest),
            # a registry that sends anonymous pulls to a mirror, and a mirror that challenges for a token
            # of its own: the registry's credentials are not for it
            location("= /v2/creds/open/manifests/v1", f"return 307 http://localhost:{p}/foreign/manifests/v1;"),
            location("= /foreign/manifests/v1", *bearer(f"http://localhost:{p}/token"), *manifest),
        ]
        targets = {
            "cross": f"http://localhost:{p}/cdn/cross?{SIGNATURE}",
            "same": "/v2/creds/m/storage/same",
            "chain": "/v2/creds/m/storage/chain",
            "tls": f"https://127.0.0.1:{s}/cdn/tls?{SIGNATURE}",
            "tlsafterhop": "/v2/creds/m/public/tlsafterhop",
            "expired": f"http://localhost:{p}/expired/blob?{SIGNATURE}",
            "deadhost": f"http://localhost:{free_port()}/cdn/deadhost?{SIGNATURE}",
        }
        for shape, blob in BLOBS.items():
            out.append(location(f"= /v2/creds/m/blobs/{digest(blob)}", *bearer(realm), f"return 307 {targets[shape]};"))
        out += [
            location("= /cdn/cross", *body(BLOBS["cross"])),
            location("= /cdn/tls", *body(BLOBS["tls"])),
            location("= /v2/creds/m/public/tlsafterhop", f"return 307 https://127.0.0.1:{s}/cdn/tlsafterhop?{SIGNATURE};"),
            location("= /cdn/tlsafterhop", *body(BLOBS["tlsafterhop"])),
            location("= /v2/creds/m/storage/same", *bearer(realm), *body(BLOBS["same"])),
            # same origin (keeps the token), then the CDN, then back to the registry's origin
            location("= /v2/creds/m/storage/chain", *bearer(realm), f"return 302 http://localhost:{p}/cdn/chain;"),
            location("= /cdn/chain", f"return 307 http://127.0.0.1:{p}/v2/creds/m/public/chain;"),
            location("= /v2/creds/m/public/chain", *body(BLOBS["chain"])),
            location("= /expired/blob", f"return 403 '{DENIED}';"),
        ]
        # whole models for the modules, over plain HTTP: their weights' CDN refuses (expired) or is down
        # (deadhost); the TLS one is tlsrealm above
        for tag, shape in (("expired", "expired"), ("deadhost", "deadhost")):
            out.append(location(f"= /v2/creds/m/manifests/{tag}", *bearer(realm),
                                *body(manifest_for([BLOBS[shape]]).encode(), MANIFEST_V2)))
        out.append(location(f"= /v2/creds/m/blobs/{digest(CONFIG_BLOB)}", *bearer(realm), *body(CONFIG_BLOB)))
        return "".join(out)

    def server(self) -> str:
        return SERVER.format(work=self.work, p=self.p, q=self.q, s=self.s, locations=self.locations())

    @property
    def log(self) -> Path:
        return self.work / "creds.log"

    def _barrier(self) -> str:
        """A request of our own, waited for in the log. nginx writes a request's line as it finishes it, before
        its one worker takes up the next: once this line is there, those of the client's earlier requests are."""
        uri = f"/__barrier__/{uuid.uuid4().hex}"
        urllib.request.urlopen(f"http://127.0.0.1:{self.p}{uri}", timeout=5).close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.log.exists() and uri in self.log.read_text():
                return uri
            time.sleep(0.02)
        raise AssertionError(f"nginx did not log {uri}:\n{self.proc.log_tail()}")

    def mark(self) -> int:
        self._barrier()
        return self.log.stat().st_size

    def since(self, offset: int) -> list[dict]:
        """The requests nginx received after mark() returned offset."""
        self._barrier()
        with open(self.log, "rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode().splitlines()
        return [entry for entry in map(json.loads, lines) if not entry["uri"].startswith("/__barrier__/")]


@pytest.fixture(scope="module")
def recorder(tmp_path_factory):
    if not nginx_bin():
        pytest.fail("nginx is needed for the recording registry: run `make setup`")
    work = tmp_path_factory.mktemp("recording-registry")
    make_ca_and_server_cert(work)
    reg = RecordingRegistry(work, free_port(), free_port(), free_port(), str(work / "ca.pem"))
    # the TLS port listens as soon as the plain one answers: one process binds them all before serving
    with nginx("nginx-recording-registry", work, reg.server(), ready_url=f"http://127.0.0.1:{reg.p}/__barrier__/start",
               http=CREDS_LOG.format(work=work)) as reg.proc:
        yield reg


def origin(entry: dict) -> str:
    return f"{entry['scheme']}://{entry['host']}"


def sent_with(entries: list[dict], auth_prefix: str) -> list[str]:
    return [f"{origin(e)}{e['uri']}" for e in entries if e["auth"].startswith(auth_prefix)]


def assert_no_secrets(result, *more: str) -> None:
    text = json.dumps(result)
    for secret in SECRETS + more:
        assert secret not in text, f"{secret!r} in {text}"


def plain_client(recorder, **kwargs) -> RegistryClient:
    return RegistryClient(recorder.plain, insecure=True, username=USER, password=PASSWORD, timeout=10, **kwargs)


def read_all(resp) -> bytes:
    try:
        return resp.read()
    finally:
        resp.close()


# -- 1. basic credentials and the token service ---------------------------------------------------------


def test_basic_credentials_never_go_to_a_plain_http_token_service_of_an_https_registry(
        module_runner, recorder, tmp_path):
    start = recorder.mark()
    result = module_runner("ollama_store_model", dict(
        name=f"{recorder.tls}/creds/plainrealm:v1", path=str(tmp_path / "models"), ca_path=recorder.ca,
        registry_username=USER, registry_password=PASSWORD, progress_interval=0))
    seen = recorder.since(start)
    assert result["failed"], result
    assert recorder.plain_realm in result["msg"], result["msg"]
    assert "insecure: true" in result["msg"] and "https" in result["msg"], result["msg"]
    assert not [e for e in seen if e["uri"].startswith("/token")], seen
    assert not Path(result["manifest_path"]).exists()
    assert_no_secrets(result)


def test_insecure_opts_into_a_plain_http_token_service(recorder):
    start = recorder.mark()
    found = plain_client(recorder).resolve("creds/plainrealm", "v1")
    assert found["manifest"]["layers"][0]["digest"] == digest(WEIGHTS_BLOB)
    seen = recorder.since(start)
    assert sent_with(seen, "Basic") == [f"{recorder.plain_realm}?scope=repository%3Acreds%2Fplainrealm%3Apull"
                                        "&service=recording-registry"], seen


def test_https_token_service_gets_the_credentials_and_the_cdn_gets_none(module_runner, recorder, tmp_path):
    start = recorder.mark()
    result = module_runner("ollama_store_model", dict(
        name=f"{recorder.tls}/creds/tlsrealm:v1", path=str(tmp_path / "models"), ca_path=recorder.ca,
        registry_username=USER, registry_password=PASSWORD, progress_interval=0))
    seen = recorder.since(start)
    assert not result["failed"] and result["action"] == "seeded", result
    assert sorted(result["blobs_downloaded"]) == sorted([digest(CONFIG_BLOB), digest(WEIGHTS_BLOB)])
    assert [u.split("?")[0] for u in sent_with(seen, "Basic")] == [f"https://localhost:{recorder.s}/token"]
    assert all(u.startswith(f"https://{recorder.tls}/v2/") for u in sent_with(seen, "Bearer")), seen
    cdn = [e for e in seen if e["uri"].startswith("/cdn/")]
    assert len(cdn) == 2 and all(e["auth"] == "" and e["scheme"] == "https" for e in cdn), cdn
    assert_no_secrets(result, SIGNATURE)


@pytest.mark.parametrize(("realm", "expect_token"), [("realmsame", True), ("realmcross", False)])
def test_token_service_redirect_keeps_basic_credentials_only_on_its_own_host(recorder, realm, expect_token):
    start = recorder.mark()
    client = plain_client(recorder)
    if expect_token:
        assert client.resolve(f"creds/{realm}", "v1")["size"] == len(CONFIG_BLOB) + len(WEIGHTS_BLOB)
    else:
        with pytest.raises(RegistryError) as err:
            client.resolve(f"creds/{realm}", "v1")
        assert err.value.kind == "auth" and f"http://localhost:{recorder.q}/token" in str(err.value), err.value
        assert_no_secrets(str(err.value))
    seen = recorder.since(start)
    moved = [e for e in seen if e["uri"].startswith("/token?")]
    assert len(moved) == 1 and moved[0]["auth"] == (BASIC if expect_token else ""), seen


# -- 2. Authorization and redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["cross", "otherport"])
def test_manifest_redirect_to_another_host_drops_authorization(recorder, tag):
    start = recorder.mark()
    found = plain_client(recorder).resolve("creds/m", tag)
    assert found["manifest"]["layers"][0]["digest"] == digest(WEIGHTS_BLOB)
    seen = recorder.since(start)
    mirror = [e for e in seen if e["uri"] == "/mirror/manifests/v1"]
    assert len(mirror) == 1 and mirror[0]["auth"] == "", seen
    assert sent_with(seen, "Bearer") == [f"http://{recorder.plain}/v2/creds/m/manifests/{tag}"]


def test_manifest_redirect_on_the_same_host_keeps_authorization(recorder):
    start = recorder.mark()
    found = plain_client(recorder).resolve("creds/m", "moved")
    assert found["manifest"]["layers"][0]["digest"] == digest(WEIGHTS_BLOB)
    seen = recorder.since(start)
    assert sent_with(seen, "Bearer") == [f"http://{recorder.plain}/v2/creds/m/manifests/moved",
                                         f"http://{recorder.plain}/v2/creds/m/manifests/v1"], seen


def test_blob_redirect_to_another_host_drops_authorization(recorder):
    start = recorder.mark()
    blob = BLOBS["cross"]
    assert read_all(plain_client(recorder).open_blob("creds/m", digest(blob))) == blob
    seen = recorder.since(start)
    cdn = [e for e in seen if e["uri"].startswith("/cdn/cross")]
    assert len(cdn) == 1 and cdn[0]["auth"] == "" and cdn[0]["host"] == f"localhost:{recorder.p}", seen


def test_blob_redirect_on_the_same_host_keeps_authorization(recorder):
    start = recorder.mark()
    blob = BLOBS["same"]
    assert read_all(plain_client(recorder).open_blob("creds/m", digest(blob))) == blob
    seen = recorder.since(start)
    storage = [e for e in seen if e["uri"] == "/v2/creds/m/storage/same"]
    assert len(storage) == 1 and storage[0]["auth"] == f"Bearer {TOKEN}", seen


def test_authorization_dropped_at_another_host_does_not_come_back(recorder):
    """registry -> registry (kept) -> CDN (dropped) -> registry again: the last hop is a URL the CDN chose,
    so it gets no credentials either."""
    start = recorder.mark()
    blob = BLOBS["chain"]
    assert read_all(plain_client(recorder).open_blob("creds/m", digest(blob))) == blob
    seen = recorder.since(start)
    hops = [(origin(e) + e["uri"], e["auth"]) for e in seen if e["status"] != "401" and "/token" not in e["uri"]]
    assert hops == [
        (f"http://{recorder.plain}/v2/creds/m/blobs/{digest(blob)}", f"Bearer {TOKEN}"),
        (f"http://{recorder.plain}/v2/creds/m/storage/chain", f"Bearer {TOKEN}"),
        (f"http://localhost:{recorder.p}/cdn/chain", ""),
        (f"http://{recorder.plain}/v2/creds/m/public/chain", ""),
    ], seen


@pytest.mark.parametrize("shape", ["tls", "tlsafterhop"])
def test_blob_redirect_to_https_is_verified_and_gets_no_authorization(recorder, shape):
    """From the plain-HTTP registry to a CDN over TLS, directly or after a hop on the registry: the TLS hop
    is verified, against ca_path when given."""
    blob = BLOBS[shape]
    with pytest.raises(RegistryError) as err:
        plain_client(recorder).open_blob("creds/m", digest(blob))
    assert err.value.kind == "unreachable" and "set ca_path" in str(err.value), err.value
    assert f"https://{recorder.tls}/cdn/{shape}" in str(err.value) and SIGNATURE not in str(err.value)

    start = recorder.mark()
    assert read_all(plain_client(recorder, ca_path=recorder.ca).open_blob("creds/m", digest(blob))) == blob
    seen = recorder.since(start)
    cdn = [e for e in seen if e["uri"].startswith(f"/cdn/{shape}")]
    assert len(cdn) == 1 and cdn[0]["scheme"] == "https" and cdn[0]["auth"] == "", seen


def test_challenge_from_a_redirect_target_is_not_answered(recorder):
    start = recorder.mark()
    with pytest.raises(RegistryError) as err:
        plain_client(recorder).resolve("creds/open", "v1")
    seen = recorder.since(start)
    assert f"http://localhost:{recorder.p}/foreign/manifests/v1" in str(err.value), err.value
    assert err.value.status == 401
    assert not [e for e in seen if e["host"].startswith("localhost") and e["auth"]], seen
    assert not [e for e in seen if e["uri"].startswith("/token")], seen


def test_redirects_stop_after_ten(recorder):
    start = recorder.mark()
    with pytest.raises(RegistryError) as err:
        plain_client(recorder).resolve("creds/m", "loop")
    seen = recorder.since(start)
    assert err.value.kind == "protocol" and "more than 10 redirects" in str(err.value), err.value
    assert len(sent_with(seen, "Bearer")) == 11, seen  # the request and the ten redirects followed


def test_redirect_to_a_file_url_is_refused(recorder):
    with pytest.raises(RegistryError) as err:
        plain_client(recorder).resolve("creds/m", "file")
    assert err.value.kind == "protocol" and "file:///etc/hostname" in str(err.value), err.value
    assert "not an http" in str(err.value)


# -- 3. TLS verification is on by default ------------------------------------------------------------------


def test_store_model_verifies_the_registry_certificate_by_default(module_runner, recorder, tmp_path):
    start = recorder.mark()
    result = module_runner("ollama_store_model", dict(
        name=f"{recorder.tls}/creds/tlsrealm:v1", path=str(tmp_path / "models"),
        registry_username=USER, registry_password=PASSWORD, progress_interval=0))
    assert result["failed"], result
    assert "certificate is not trusted" in result["msg"] and "set ca_path" in result["msg"], result["msg"]
    assert f"https://{recorder.tls}/v2/creds/tlsrealm/manifests/v1" in result["msg"]
    assert not Path(result["manifest_path"]).exists()
    # the handshake failed before any request: nginx saw nothing, let alone credentials
    assert recorder.since(start) == []
    assert_no_secrets(result)


def test_model_latest_verifies_the_registry_certificate_by_default(module_runner, recorder, ollama):
    args = dict(name=f"{recorder.tls}/creds/tlsrealm:v1", state="latest", host=ollama.url,
                registry_username=USER, registry_password=PASSWORD, progress_interval=0)
    refused = module_runner("ollama_model", args, check_mode=True)
    assert refused["failed"], refused
    assert "certificate is not trusted" in refused["msg"] and "set ca_path" in refused["msg"], refused["msg"]
    assert_no_secrets(refused)

    # outside check mode a registry this host cannot reach is only a warning: the server pulls by itself
    # (and fails too, it does not trust the test's CA either); the warning carries no secret
    warned = module_runner("ollama_model", args)
    assert warned["failed"] and "not reachable from this host" in warned["warnings"][0], warned
    assert_no_secrets(warned)

    trusted = module_runner("ollama_model", dict(args, ca_path=recorder.ca), check_mode=True)
    assert not trusted["failed"] and trusted["changed"], trusted
    assert trusted["registry_digest"].startswith("sha256:")
    assert_no_secrets(trusted)


# -- 4. secrets stay out of results, warnings and messages -------------------------------------------------


def test_wrong_password_is_not_echoed(module_runner, recorder, tmp_path):
    wrong = "wrong-pw-Hh3-must-not-leak"
    result = module_runner("ollama_store_model", dict(
        name=f"{recorder.tls}/creds/tlsrealm:v1", path=str(tmp_path / "models"), ca_path=recorder.ca,
        registry_username=USER, registry_password=wrong, progress_interval=0))
    assert result["failed"] and "HTTP 401" in result["msg"], result
    assert f"https://localhost:{recorder.s}/token" in result["msg"]
    assert_no_secrets(result, wrong, base64.b64encode(f"{USER}:{wrong}".encode()).decode())


@pytest.mark.parametrize(("tag", "expect"), [("expired", "HTTP 403"), ("deadhost", "cannot reach")])
def test_blob_host_failure_names_the_host_without_credentials_or_signature(module_runner, recorder, tmp_path,
                                                                           tag, expect):
    result = module_runner("ollama_store_model", dict(
        name=f"{recorder.plain}/creds/m:{tag}", path=str(tmp_path / "models"), insecure=True,
        registry_username=USER, registry_password=PASSWORD, progress_interval=0))
    assert result["failed"] and expect in result["msg"], result
    assert "localhost:" in result["msg"] and "the manifest was not written" in result["msg"], result["msg"]
    assert not Path(result["manifest_path"]).exists()
    assert_no_secrets(result, SIGNATURE)


def _adhoc(ansible_env, module, args, *flags):
    cmd = ["ansible", "localhost", "-i", "localhost,", "-c", "local", "-vvv", *flags, "-e",
           f"ansible_python_interpreter={sys.executable}", "-m", f"aiplatform.ollama.{module}", "-a", json.dumps(args)]
    return subprocess.run(cmd, env=ansible_env, capture_output=True, text=True, timeout=300)


def test_verbose_ansible_output_shows_neither_password_nor_token(ansible_env, recorder, ollama, tmp_path):
    common = dict(name=f"{recorder.tls}/creds/tlsrealm:v1", ca_path=recorder.ca, registry_username=USER,
                  registry_password=PASSWORD, progress_interval=0)
    seeded = _adhoc(ansible_env, "ollama_store_model", dict(common, path=str(tmp_path / "models")))
    assert seeded.returncode == 0 and "CHANGED" in seeded.stdout, seeded.stdout + seeded.stderr
    latest = _adhoc(ansible_env, "ollama_model", dict(common, state="latest", host=ollama.url), "--check")
    assert latest.returncode == 0 and "registry_digest" in latest.stdout, latest.stdout + latest.stderr
    for run in (seeded, latest):
        # -vvv prints the module's arguments; the password is there only as Ansible's no_log mask
        assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.stdout
        for secret in SECRETS:
            assert secret not in run.stdout + run.stderr
