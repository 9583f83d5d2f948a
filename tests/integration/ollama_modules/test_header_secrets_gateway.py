"""Credentials given in `headers` reach the server and never the output: every module that takes `headers`
runs through ansible-playbook -vvv (which prints each result's `invocation`) against the real Ollama behind a
real nginx gateway that answers 401 unless both credential headers arrive, and logs the ordinary one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.playbook import run_playbook
from tests.services.nginx import nginx_bin, token_gateway

TOKEN = "s3cr3t-token-4f1c"
API_KEY = "k3y-s3cr3t-9d2e"
TRACE = "trace-visible-7e31"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": API_KEY, "X-Trace-Id": TRACE}

GATEWAY_LOG = """\
  log_format seen '$request_method $uri $status trace=$http_x_trace_id';
  access_log {work}/seen.log seen;"""
@pytest.fixture(scope="module")
def gateway(ollama, tmp_path_factory):
    if not nginx_bin():
        pytest.fail("nginx is needed for the gateway: run `make setup`")
    work = tmp_path_factory.mktemp("header-gateway")
    required = {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": API_KEY}
    with token_gateway("nginx-header-gateway", work, ollama.url, required, http=GATEWAY_LOG.format(work=work)) as url:
        yield {"url": url, "log": work / "seen.log"}


@pytest.fixture(scope="module")
def gateway_model(registry, model_factory):
    return registry.push_model(model_factory.tiny(seed=97), name="itest/headers", tag="v1")


PLAY = """
- name: Every module that takes headers, credentials among them, every detail printed
  hosts: localhost
  gather_facts: false
  vars:
    gateway_headers: {headers}
    # YAML's double quotes make the escapes a real CR LF
    injected_authorization: "{authorization}\\r\\nX-Injected: 1"
  module_defaults:
    group/aiplatform.ollama.ollama:
      host: {gateway}
      headers: "{{{{ gateway_headers }}}}"
  tasks:
    - name: Read the server
      aiplatform.ollama.ollama_info:
      register: served
    - name: Pull the model, printing progress (the action plugin's asynchronous job)
      aiplatform.ollama.ollama_model:
        name: {model}
        insecure: true
        progress_interval: 0.2
    - name: Probe it
      aiplatform.ollama.ollama_health:
        name: {model}
        level: generate
    - name: Send parallel requests
      aiplatform.ollama.ollama_concurrency:
        name: {model}
        requests: 2
        max_tokens: 4
    - name: Fail on a model the server does not have
      aiplatform.ollama.ollama_health:
        name: itest/absent:v1
        level: model
      ignore_errors: true
    - name: Fail AnsibleModule's validation
      aiplatform.ollama.ollama_info:
        no_such_option: 1
      ignore_errors: true
    - name: Refuse a header value that would inject another header
      aiplatform.ollama.ollama_info:
        headers: "{{{{ gateway_headers | combine({{'Authorization': injected_authorization}}) }}}}"
      ignore_errors: true
    - name: Print the registered result
      ansible.builtin.debug:
        var: served
"""


def test_credential_headers_reach_the_server_and_never_the_output(ansible_env, gateway, gateway_model, tmp_path):
    play = tmp_path / "headers.yml"
    play.write_text(PLAY.format(headers=json.dumps(HEADERS), authorization=HEADERS["Authorization"],
                                gateway=gateway["url"], model=gateway_model.ref))
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}", str(play), "-vvv"]
    proc = subprocess.run(argv, env=ansible_env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    recap = r"localhost\s*:\s*ok=\d+\s+changed=1\s+unreachable=0\s+failed=0\s.*ignored=3"
    assert re.search(recap, output), output[-2000:]
    leaks = [line for line in output.splitlines() if TOKEN in line or API_KEY in line]
    assert not leaks, leaks[:5]
    # -vvv shows each invocation: the ordinary header as given, the credentials masked
    assert TRACE in output and "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output
    # the failures still say what is wrong
    assert "itest/absent:v1" in output
    assert "no_such_option" in output
    assert "the value of Authorization has a line break or NUL" in output
    # the gateway answered only requests that carried both credentials; the ordinary header came along
    seen = gateway["log"].read_text().splitlines()
    assert any(" 200 " in line and "/api/chat" in line for line in seen), seen
    assert all(line.endswith(f"trace={TRACE}") for line in seen if "/ollama/" in line), seen
    assert not [line for line in seen if " 401 " in line], seen


def test_the_roles_print_no_credential_of_an_endpoints_headers(work_tree_collections, gateway, gateway_model):
    """inference_check loops over its endpoints, and a loop's item is printed with every result (-v)."""
    endpoints = [{"name": "agent-gateway", "url": gateway["url"], "headers": HEADERS}]
    run = run_playbook(work_tree_collections, "verify.yml", "local",
                       {"inference_check_model": gateway_model.ref, "inference_check_endpoints": endpoints,
                        "inference_check_ensure_model": True, "inference_check_insecure": True}, "-vvv")
    assert run.returncode == 0, run.output[-3000:]
    assert "agent-gateway: healthy" in run.output
    leaks = [line for line in run.output.splitlines() if TOKEN in line or API_KEY in line]
    assert not leaks, leaks[:5]
