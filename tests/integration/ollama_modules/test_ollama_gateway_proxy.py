"""The modules behind what sits in front of Ollama in the platform: a gateway under a path prefix that
wants a token (a real nginx reverse proxy), and HTTP proxies taken from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.playbook import run_playbook
from tests.services.nginx import nginx_bin, token_gateway
from tests.services.process import free_port

TOKEN = "gateway-token"

@pytest.fixture(scope="module")
def gateway(ollama, tmp_path_factory):
    if not nginx_bin():
        pytest.fail("nginx is needed for the gateway test: run `make setup`")
    with token_gateway("nginx-gateway", tmp_path_factory.mktemp("gateway"), ollama.url,
                       {"Authorization": f"Bearer {TOKEN}"}) as url:
        yield url


@pytest.fixture(scope="module")
def gateway_model(registry, model_factory):
    return registry.push_model(model_factory.tiny(seed=91), name="itest/gateway", tag="v1")


def test_pull_and_probe_through_a_gateway_with_a_token(module_runner, gateway, gateway_model):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    denied = module_runner("ollama_info", dict(host=gateway))
    assert denied["failed"] and "HTTP 401" in denied["msg"] and gateway in denied["msg"], denied

    pulled = module_runner(
        "ollama_model", dict(name=gateway_model.ref, host=gateway, headers=auth, insecure=True, progress_interval=0)
    )
    assert pulled["changed"] and pulled["size"] == gateway_model.size, pulled
    again = module_runner(
        "ollama_model",
        dict(name=gateway_model.ref, host=gateway + "/", headers=auth, insecure=True, progress_interval=0),
    )
    assert again["changed"] is False
    probe = module_runner("ollama_health", dict(name=gateway_model.ref, host=gateway, headers=auth))
    assert probe["healthy"] and probe["eval_tokens"] >= 1 and probe["openai_completion_tokens"] >= 1, probe
    # the parallel streamed chats of ollama_concurrency pass the same gateway, token and prefix
    fanout = module_runner("ollama_concurrency", dict(name=gateway_model.ref, host=gateway, headers=auth, requests=3,
                                                      max_tokens=8))
    assert not fanout["failed"] and fanout["succeeded"] == 3 and fanout["tokens"] == 3 * 8, fanout


def test_api_key_reaches_the_gateway_and_never_the_output(module_runner, work_tree_collections, gateway,
                                                          gateway_model, monkeypatch):
    probe = module_runner("ollama_health", dict(host=gateway, api_key=TOKEN, level="version"))
    assert probe["healthy"], probe
    assert TOKEN not in repr(probe)

    both = module_runner("ollama_info", dict(host=gateway, api_key=TOKEN, headers={"authorization": "Bearer x"}))
    assert both["failed"] and "api_key and an Authorization header in headers both set the token" in both["msg"]

    # from the environment, as module_defaults or a CI secret would provide it
    monkeypatch.setenv("OLLAMA_API_KEY", TOKEN)
    from_env = module_runner("ollama_info", dict(host=gateway))
    assert not from_env.get("failed"), from_env
    monkeypatch.delenv("OLLAMA_API_KEY")

    # the role, with the token on its endpoint and every detail of every task printed
    endpoints = [{"name": "agent-gateway", "url": gateway, "api_key": TOKEN}]
    run = run_playbook(work_tree_collections, "verify.yml", "local",
                       {"inference_check_model": gateway_model.ref, "inference_check_endpoints": endpoints,
                        "inference_check_ensure_model": True, "inference_check_insecure": True}, "-vvv")
    assert run.returncode == 0, run.output[-3000:]
    assert "agent-gateway: healthy" in run.output
    assert TOKEN not in run.output, [line for line in run.output.splitlines() if TOKEN in line][:5]


MODULE_DEFAULTS_PLAY = """
- name: One server and token for every module of the collection
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/aiplatform.ollama.ollama:
      host: {gateway}
      api_key: {token}
  tasks:
    - name: Read the server through the gateway
      aiplatform.ollama.ollama_info:
      register: served
    - name: Probe the model through the gateway
      aiplatform.ollama.ollama_health:
        name: {model}
        level: generate
    - name: Show what was found
      ansible.builtin.debug:
        msg: "models through the gateway: {{{{ served.models | map(attribute='name') | join(',') }}}}"
"""


def test_module_defaults_group_sets_server_and_token_once(work_tree_collections, gateway, gateway_model, tmp_path,
                                                          module_runner):
    module_runner("ollama_model", dict(name=gateway_model.ref, host=gateway, api_key=TOKEN, insecure=True,
                                       progress_interval=0))
    play = tmp_path / "play.yml"
    play.write_text(MODULE_DEFAULTS_PLAY.format(gateway=gateway, token=TOKEN, model=gateway_model.ref))
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}", str(play), "-v"]
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(work_tree_collections), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "models through the gateway: " in output and "itest/gateway:v1" in output, output[-3000:]
    assert TOKEN not in output


def test_latest_falls_back_to_pull_and_compare_when_the_registry_is_only_reachable_by_the_server(
    module_runner, monkeypatch, ollama, registry, model_factory
):
    """The managed host's proxy (from its environment) is dead for the registry, the server is reached
    directly: `latest` cannot ask the registry itself, so it pulls through the server and compares."""
    model = registry.push_model(model_factory.tiny(seed=92), name="itest/proxied", tag="v1")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("no_proxy", ollama.host)
    args = dict(name=model.ref, state="latest", host=ollama.url, insecure=True, progress_interval=0)
    first = module_runner("ollama_model", args)
    assert first["changed"] is True and "registry_digest" not in first, first
    assert any("not reachable from this host" in w for w in first["warnings"]), first["warnings"]
    second = module_runner("ollama_model", args)
    assert second["changed"] is False and second["digest"] == first["digest"], second
    check = module_runner("ollama_model", args, check_mode=True)
    assert check["failed"] and f"registry {registry.host}" in check["msg"], check
