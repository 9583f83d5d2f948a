"""ollama_health and ollama_info against a real Ollama 0.18.3 with the tiny model pulled from the registry."""

from __future__ import annotations

import time

import pytest

from tests.services.process import free_port


@pytest.fixture(scope="module")
def pulled(module_runner, ollama, registry, model_factory):
    model = registry.push_model(model_factory.tiny(seed=61), name="itest/health", tag="v1")
    result = module_runner("ollama_model", dict(name=model.ref, host=ollama.url, insecure=True, progress_interval=0))
    assert not result["failed"], result
    return model, result


def test_health_generates_real_tokens_at_every_level(module_runner, ollama, pulled):
    model, pull = pulled
    result = module_runner("ollama_health", dict(name=model.ref, host=ollama.url, expected_digest=pull["digest"]))
    assert not result["failed"] and result["healthy"], result
    assert result["passed"] == ["reachable", "version", "model", "generate", "openai"]
    assert result["version"] == "0.18.3"
    assert result["digest"] == pull["digest"]
    assert result["eval_tokens"] >= 1 and result["eval_tokens_per_s"] > 0
    assert result["prompt_tokens"] >= 1 and result["prompt_tokens_per_s"] > 0
    assert result["time_to_first_token_seconds"] > 0 and result["load_seconds"] >= 0
    assert result["openai_completion_tokens"] >= 1
    assert result["changed"] is False


def test_health_is_repeatable_with_fixed_seed_and_temperature(module_runner, ollama, pulled):
    model, _ = pulled
    args = dict(name=model.ref, host=ollama.url, level="generate", num_predict=8)
    first = module_runner("ollama_health", args)
    second = module_runner("ollama_health", args)
    assert first["response"] == second["response"] and first["eval_tokens"] == second["eval_tokens"]


def test_health_thresholds_fail_with_measured_value_and_threshold(module_runner, ollama, pulled):
    model, _ = pulled
    result = module_runner("ollama_health", dict(name=model.ref, host=ollama.url, level="generate",
                                                 min_eval_tokens_per_s=1e9))
    assert result["failed"] and result["failed_level"] == "generate", result
    assert "below min_eval_tokens_per_s 1000000000.00" in result["msg"]
    assert f"{result['eval_tokens_per_s']:.2f} tokens/s" in result["msg"]


def test_health_wrong_digest_fails_at_model_level(module_runner, ollama, pulled):
    model, _ = pulled
    result = module_runner("ollama_health", dict(name=model.ref, host=ollama.url, expected_digest="sha256:" + "0" * 64))
    assert result["failed"] and result["failed_level"] == "model", result
    assert "expected sha256:000" in result["reason"]


def test_health_missing_model_fails_at_model_level(module_runner, ollama):
    result = module_runner("ollama_health", dict(name="itest/not-pulled:v1", host=ollama.url))
    assert result["failed"] and result["failed_level"] == "model", result
    assert result["passed"] == ["reachable", "version"]
    assert "model itest/not-pulled:v1 is not on the server" in result["msg"]
    quiet = module_runner("ollama_health", dict(name="itest/not-pulled:v1", host=ollama.url, fail_on_unhealthy=False))
    assert not quiet["failed"] and quiet["healthy"] is False and quiet["failed_level"] == "model"


def test_health_unreachable_port_fails_at_level_one_quickly(module_runner):
    host = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = module_runner("ollama_health", dict(host=host, name="qwen2.5"))
    assert time.monotonic() - started < 5
    assert result["failed"] and result["failed_level"] == "reachable" and result["passed"] == [], result
    assert f"cannot reach the Ollama server at {host}" in result["msg"]


def test_health_needs_a_name_for_model_levels(module_runner, ollama):
    result = module_runner("ollama_health", dict(host=ollama.url, level="generate"))
    assert result["failed"] and "set name" in result["msg"]
    version_only = module_runner("ollama_health", dict(host=ollama.url))
    assert version_only["healthy"] and version_only["passed"] == ["reachable", "version"]


def test_info_lists_version_models_and_loaded(module_runner, ollama, pulled):
    model, pull = pulled
    module_runner("ollama_health", dict(name=model.ref, host=ollama.url, level="generate"))
    result = module_runner("ollama_info", dict(host=ollama.url), check_mode=True)
    assert not result["failed"] and result["changed"] is False
    assert result["version"] == "0.18.3"
    entry = next(m for m in result["models"] if m["name"] == model.ref)
    assert entry["digest"] == pull["digest"] and entry["size"] == model.size
    assert entry["family"] == "llama" and entry["modified"]
    assert entry["model"] == model.ref
    assert set(entry) >= {"parameter_size", "quantization"}
    loaded = [m for m in result["loaded"] if m["name"] == model.ref]
    assert loaded and loaded[0]["size"] > 0 and loaded[0]["expires_at"]


def test_info_unreachable_names_the_host(module_runner):
    host = f"http://127.0.0.1:{free_port()}"
    result = module_runner("ollama_info", dict(host=host))
    assert result["failed"] and host in result["msg"]
