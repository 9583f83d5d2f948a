"""The modules behind what sits in front of Ollama in the platform: a gateway under a path prefix that
wants a token (a real nginx reverse proxy), and HTTP proxies taken from the environment."""

from __future__ import annotations

import pytest

from tests.services.nginx import nginx, nginx_bin
from tests.services.process import free_port

GATEWAY_SERVER = """\
    listen 127.0.0.1:{port};
    location /ollama/ {{
      if ($http_authorization != "Bearer gateway-token") {{ return 401; }}
      proxy_pass {upstream}/;
      proxy_buffering off;
      proxy_read_timeout 600s;
    }}"""


@pytest.fixture(scope="module")
def gateway(ollama, tmp_path_factory):
    if not nginx_bin():
        pytest.skip("nginx is needed for the gateway test: run `make setup`")
    port = free_port()
    server = GATEWAY_SERVER.format(port=port, upstream=ollama.url)
    with nginx("nginx-gateway", tmp_path_factory.mktemp("gateway"), server, ready_url=f"http://127.0.0.1:{port}/"):
        yield f"http://127.0.0.1:{port}/ollama"


@pytest.fixture(scope="module")
def gateway_model(registry, model_factory):
    return registry.push_model(model_factory.tiny(seed=91), name="itest/gateway", tag="v1")


def test_pull_and_probe_through_a_gateway_with_a_token(module_runner, gateway, gateway_model):
    auth = {"Authorization": "Bearer gateway-token"}
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
