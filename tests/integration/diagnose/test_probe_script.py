"""The diagnosis' in-cluster probe script (roles/diagnose/files/probe.sh), run with sh and curl as the
probe pod runs it, against a real Ollama and a real nginx gateway, and read by exec_probe_result."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ansible_collections.aiplatform.ollama.plugins.filter.exec_probe_result import exec_probe_result
from tests.services.nginx import nginx
from tests.services.process import free_port

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "diagnose" / "files" / "probe.sh"


def probe(url: str, model: str, name: str = "direct", *tls: str) -> dict:
    """tls: VALIDATE_CERTS and CA_PEM as roles/diagnose passes them (diagnose_validate_certs, the content of
    diagnose_ca_path)."""
    proc = subprocess.run(["sh", "-c", SCRIPT.read_text(), "probe", url, model, "20", *tls], capture_output=True,
                          text=True, timeout=120)
    return exec_probe_result({"item": {"name": name, "url": url}, "stdout": proc.stdout, "stderr": proc.stderr,
                              "rc": proc.returncode}, pod="probe-abc")


@pytest.fixture(scope="module")
def pulled(ollama, tiny_model) -> str:
    ollama.cli("pull", "--insecure", tiny_model.ref)
    return tiny_model.ref


def test_a_served_model_passes_every_level(ollama, pulled):
    result = probe(ollama.url, pulled)
    assert result["healthy"], result
    assert result["passed"] == ["reachable", "version", "model", "generate"]
    assert result["via"] == "pod probe-abc" and result["name"] == "direct" and result["url"] == ollama.url


def test_a_missing_model_fails_at_model_with_ollamas_reason(ollama, registry):
    result = probe(ollama.url, f"{registry.host}/library/never-pushed:latest")
    assert not result["healthy"] and result["failed_level"] == "model", result
    assert result["passed"] == ["reachable", "version"]
    assert "HTTP 404" in result["reason"] and "not found" in result["reason"]


def test_a_closed_port_fails_at_reachable_with_curls_error(pulled):
    result = probe(f"http://127.0.0.1:{free_port()}", pulled)
    assert not result["healthy"] and result["failed_level"] == "reachable" and result["passed"] == []
    assert result["reason"].startswith("curl exit 7:"), result


def test_a_gateway_with_a_dead_upstream_fails_at_version_with_its_status(tmp_path, pulled):
    port = free_port()
    server = (f"    listen 127.0.0.1:{port};\n    location = /ready {{ return 200; }}\n"
              f"    location / {{ proxy_pass http://127.0.0.1:{free_port()}; }}\n")
    with nginx("dead-gateway", tmp_path, server, ready_url=f"http://127.0.0.1:{port}/ready"):
        result = probe(f"http://127.0.0.1:{port}", pulled, name="agent-gateway")
    assert not result["healthy"] and result["failed_level"] == "version", result
    assert result["reason"].startswith("HTTP 502")


def test_a_pod_that_cannot_run_the_script_says_so():
    # what k8s_exec returns when the probe image has no sh: the failure no real server can produce here
    result = exec_probe_result({"item": {"name": "direct", "url": "http://x"}, "stdout": "",
                                "stderr": 'exec: "sh": executable file not found in $PATH', "rc": 126})
    assert result["failed_level"] == "reachable"
    assert "the probe did not run in the pod (exit 126)" in result["reason"]
    assert "diagnose_probe_image" in result["reason"]


@pytest.fixture(scope="module")
def private_ca(tls_gateway) -> str:
    return Path(tls_gateway["ca"]).read_text()


def test_a_private_ca_gateway_is_verified_against_the_ca_it_is_given(tls_gateway, private_ca, pulled):
    result = probe(tls_gateway["url"], pulled, "agent-gateway", "true", private_ca)
    assert result["healthy"], result
    assert result["passed"] == ["reachable", "version", "model", "generate"]


@pytest.mark.parametrize("tls", [(), ("true",), ("true", "")], ids=["default", "validate", "validate-no-ca"])
def test_a_private_ca_gateway_is_refused_while_verifying_without_its_ca(tls_gateway, pulled, tls):
    result = probe(tls_gateway["url"], pulled, "agent-gateway", *tls)
    assert not result["healthy"] and result["failed_level"] == "reachable", result
    # curl's "SSL certificate problem": the certificate was checked, and against the image's CAs only
    assert result["reason"].startswith("curl exit 60:"), result


def test_validate_certs_false_skips_the_check(tls_gateway, pulled):
    result = probe(tls_gateway["url"], pulled, "agent-gateway", "false")
    assert result["healthy"], result
