"""The check a rollback ends with, alone, against real gateways in front of a real Ollama: it sends the
headers and token inference_check sends to the endpoint at the gateway's URL, and trusts the CA it trusts,
so a gateway is configured once; without them the same gateway refuses it."""

from __future__ import annotations

import pytest

from tests.playbook import run_playbook
from tests.services.nginx import nginx_bin, token_gateway

TOKEN = "rollout-gateway-token"
CHECK_PLAYBOOK = """
- name: The rollout's gateway check, alone
  hosts: k8s_controller
  gather_facts: false
  tasks:
    - name: Check the model answers through the gateway
      ansible.builtin.include_role:
        name: aiplatform.ollama.model_rollout
        tasks_from: gateway_check.yml
      vars:
        __model_rollout_check_model: "{{ check_model }}"
"""


@pytest.fixture(scope="module")
def served(ollama, registry, model_factory, module_runner):
    """A model in the session's Ollama, as a rollback finds the previous one."""
    published = registry.push_model(model_factory.tiny(seed=93), name="itest/rolled-back", tag="v1")
    pulled = module_runner("ollama_model", dict(name=published.ref, host=ollama.url, insecure=True,
                                                progress_interval=0))
    assert not pulled["failed"], pulled
    return published.ref


@pytest.fixture(scope="module")
def header_gateway(ollama, tmp_path_factory):
    if not nginx_bin():
        pytest.fail("nginx is needed for the gateway test: run `make setup`")
    with token_gateway("nginx-rollout-gateway", tmp_path_factory.mktemp("gateway"), ollama.url,
                       {"X-Gateway-Key": TOKEN}) as url:
        yield url


@pytest.fixture
def check(work_tree_collections, tmp_path, served):
    playbook = tmp_path / "gateway_check.yml"
    playbook.write_text(CHECK_PLAYBOOK)

    def run(extra_vars):
        return run_playbook(work_tree_collections, str(playbook), "local", {"check_model": served, **extra_vars})

    return run


def test_the_headers_of_the_inference_check_endpoint_at_the_gateway_url_are_sent(check, header_gateway):
    endpoints = [{"name": "direct", "url": "http://127.0.0.1:1"},
                 {"name": "agent-gateway", "url": header_gateway, "headers": {"X-Gateway-Key": TOKEN}}]
    passed = check({"model_rollout_gateway_url": header_gateway, "inference_check_endpoints": endpoints})
    assert passed.returncode == 0 and passed.recap["failed"] == 0, passed.output[-3000:]
    assert TOKEN not in passed.output

    # no endpoint at that URL: no header, and the gateway refuses the check
    refused = check({"model_rollout_gateway_url": header_gateway, "inference_check_endpoints": endpoints[:1]})
    assert refused.returncode != 0 and "HTTP 401" in refused.said, refused.output[-3000:]


def test_the_inference_check_ca_is_trusted(check, tls_gateway):
    endpoints = [{"name": "agent-gateway", "url": tls_gateway["url"]}]
    trusted = check({"model_rollout_gateway_url": tls_gateway["url"], "inference_check_endpoints": endpoints,
                     "inference_check_ca_path": tls_gateway["ca"]})
    assert trusted.returncode == 0 and trusted.recap["failed"] == 0, trusted.output[-3000:]

    untrusted = check({"model_rollout_gateway_url": tls_gateway["url"], "inference_check_endpoints": endpoints})
    assert untrusted.returncode != 0 and "certificate" in untrusted.said, untrusted.output[-3000:]
