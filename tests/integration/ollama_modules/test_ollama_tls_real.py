"""The modules against Ollama behind TLS, as a gateway with a private CA serves it: a real nginx
terminating TLS with a certificate signed by a CA made for the test (openssl)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.services.nginx import nginx, nginx_bin
from tests.services.process import free_port

TLS_GATEWAY_SERVER = """\
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {work}/server.pem;
    ssl_certificate_key {work}/server.key;
    location / {{
      proxy_pass {upstream};
      proxy_buffering off;
      proxy_read_timeout 600s;
    }}"""


def _make_ca_and_server_cert(work) -> None:
    """A private CA and a server certificate for 127.0.0.1/localhost signed by it."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=work, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test private CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")
    (work / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem")


@pytest.fixture(scope="module")
def tls_gateway(ollama, tmp_path_factory):
    if not nginx_bin() or not shutil.which("openssl"):
        pytest.fail("nginx and openssl are needed for the TLS gateway: run `make setup`")
    work = tmp_path_factory.mktemp("tls-gateway")
    _make_ca_and_server_cert(work)
    port = free_port()
    server = TLS_GATEWAY_SERVER.format(port=port, work=work, upstream=ollama.url)
    with nginx("nginx-tls-gateway", work, server, port=port):
        yield {"url": f"https://127.0.0.1:{port}", "ca": str(work / "ca.pem")}


def test_private_ca_is_trusted_through_ca_path(module_runner, tls_gateway):
    info = module_runner("ollama_info", dict(host=tls_gateway["url"], ca_path=tls_gateway["ca"]))
    assert not info["failed"], info
    assert info["version"] == "0.18.3"
    probe = module_runner("ollama_health", dict(host=tls_gateway["url"], ca_path=tls_gateway["ca"], level="version"))
    assert probe["healthy"], probe


def test_untrusted_certificate_fails_at_reachable_and_names_the_fix(module_runner, tls_gateway):
    probe = module_runner("ollama_health", dict(host=tls_gateway["url"], level="version", retries=0))
    assert probe["failed"] and probe["failed_level"] == "reachable", probe
    assert "certificate is not trusted" in probe["reason"], probe["reason"]
    assert "set ca_path" in probe["reason"]
    assert tls_gateway["url"] in probe["msg"]


def test_validate_certs_false_skips_the_check(module_runner, tls_gateway):
    info = module_runner("ollama_info", dict(host=tls_gateway["url"], validate_certs=False))
    assert not info["failed"], info
    assert info["version"] == "0.18.3"
