"""The modules against Ollama behind TLS, as a gateway with a private CA serves it: a real nginx
terminating TLS with a certificate signed by a CA made for the test (tests/conftest.py `tls_gateway`)."""

from __future__ import annotations


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
