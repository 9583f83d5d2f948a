"""ollama_concurrency against a real Ollama 0.18.3 that serves two requests at once (OLLAMA_NUM_PARALLEL=2),
with the tiny model pulled from the session registry: what a multi-agent fan-out meets."""

from __future__ import annotations

import pytest

from tests.services.ollama import OllamaServer
from tests.services.process import free_port

# Long enough that generating dominates a request (~0.3-2 s for the tiny model on a busy 2-core
# machine), so a request waiting for a slot is told apart from one that was served at once.
MAX_TOKENS = 256


@pytest.fixture(scope="module")
def parallel2(tmp_path_factory, module_runner, tiny_model):
    with OllamaServer.start(tmp_path_factory.mktemp("ollama-parallel2"), env={"OLLAMA_NUM_PARALLEL": "2"}) as server:
        pulled = module_runner("ollama_model", dict(name=tiny_model.ref, host=server.url, insecure=True,
                                                    progress_interval=0))
        assert not pulled["failed"], pulled
        # load the model now, so no batch below measures a cold load
        warm = module_runner("ollama_concurrency", dict(name=tiny_model.ref, host=server.url, requests=1))
        assert not warm["failed"], (warm, server.log_tail())
        yield server


def _check(module_runner, server, model, **args):
    return module_runner("ollama_concurrency", dict(name=model, host=server.url, max_tokens=MAX_TOKENS, **args))


def test_four_requests_on_two_slots_show_the_queue(module_runner, parallel2, tiny_model):
    result = _check(module_runner, parallel2, tiny_model.ref, requests=4)
    assert not result["failed"], (result, parallel2.log_tail())
    assert result["requests"] == 4 and result["succeeded"] == 4 and result["failures"] == 0, result
    assert result["failure_reasons"] == [] and result["violations"] == [] and result["changed"] is False
    # temperature 0 and one seed: the random-weight model never stops early, every request fills max_tokens
    assert [r["tokens"] for r in result["per_request"]] == [MAX_TOKENS] * 4
    assert result["tokens"] == 4 * MAX_TOKENS
    assert result["aggregate_tokens_per_s"] == pytest.approx(result["tokens"] / result["wall_seconds"], rel=0.01)
    latencies = sorted(r["seconds"] for r in result["per_request"])
    ttfts = sorted(r["ttft_seconds"] for r in result["per_request"])
    # nearest rank over 4: p50 is the 2nd value, p95 the 4th
    assert (result["latency_p50_seconds"], result["latency_p95_seconds"]) == (latencies[1], latencies[3])
    assert (result["ttft_p50_seconds"], result["ttft_p95_seconds"]) == (ttfts[1], ttfts[3])
    # The queue: a request beyond the two slots gets its first token only once a served request has
    # generated all its tokens, so the slowest first token comes no earlier than the fastest request
    # ends (0.8: the server frees the slot and sends that request's last line in either order).
    assert result["ttft_p95_seconds"] >= 0.8 * latencies[0], result["per_request"]
    # ... while the two served at once got theirs long before the first request ended
    assert result["ttft_p50_seconds"] < 0.5 * latencies[0], result["per_request"]
    assert result["summary"].startswith("4 parallel requests, 0 failed: latency p50 ")


def test_as_many_requests_as_slots_do_not_queue(module_runner, parallel2, tiny_model):
    """The contrast that makes the queue assertion above mean something: within NUM_PARALLEL, every
    request has its first token long before any request ends."""
    result = _check(module_runner, parallel2, tiny_model.ref, requests=2)
    assert not result["failed"] and result["failures"] == 0, result
    fastest = min(r["seconds"] for r in result["per_request"])
    assert result["ttft_p95_seconds"] < 0.5 * fastest, result["per_request"]


def test_a_bound_too_tight_fails_with_the_measured_figures(module_runner, parallel2, tiny_model):
    result = _check(module_runner, parallel2, tiny_model.ref, requests=4, max_p95_seconds=0.001,
                    min_aggregate_tokens_per_s=1e9)
    assert result["failed"], result
    p95, rate = result["latency_p95_seconds"], result["aggregate_tokens_per_s"]
    assert f"latency p95 {p95:g} s is above max_p95_seconds 0.001 s" in result["msg"]
    assert f"aggregate rate {rate:g} tokens/s is below min_aggregate_tokens_per_s 1e+09 tokens/s" in result["msg"]
    assert f"time to first token p50 {result['ttft_p50_seconds']:g} s" in result["msg"]  # the figures, all of them
    assert len(result["violations"]) == 2 and result["failures"] == 0 and result["succeeded"] == 4
    assert result["per_request"] and result["tokens"] == 4 * MAX_TOKENS  # the stats are there on failure too


def test_unreachable_server_fails_before_sending_the_batch(module_runner, tiny_model):
    host = f"http://127.0.0.1:{free_port()}"
    result = module_runner("ollama_concurrency", dict(name=tiny_model.ref, host=host, requests=3, max_tokens=4))
    assert result["failed"] and f"cannot reach the Ollama server at {host}" in result["msg"], result
    assert "per_request" not in result


def test_failed_requests_are_counted_with_their_reason_and_may_be_tolerated(module_runner, parallel2):
    args = dict(name="itest/never-pulled:v1", host=parallel2.url, requests=2, max_tokens=4)
    result = module_runner("ollama_concurrency", args)
    assert result["failed"] and result["failures"] == 2 and result["succeeded"] == 0, result
    assert "failures 2 is above max_failures 0" in result["msg"]
    [reason] = result["failure_reasons"]
    assert reason["count"] == 2 and "HTTP 404" in reason["reason"] and "not found" in reason["reason"], reason
    assert reason["reason"] in result["msg"]
    assert result["latency_p95_seconds"] is None and result["tokens"] == 0
    tolerated = module_runner("ollama_concurrency", dict(args, max_failures=2))
    assert not tolerated["failed"] and tolerated["failures"] == 2, tolerated


@pytest.mark.parametrize(
    "args, says",
    [
        (dict(requests=0), "requests must be a whole number of parallel requests, at least 1 (got 0)"),
        (dict(requests=2, max_p95_seconds=-1), "max_p95_seconds must not be negative"),
        (dict(requests=2, max_ttft_p95_seconds=-0.5), "max_ttft_p95_seconds must not be negative"),
        (dict(requests=2, min_aggregate_tokens_per_s=-1), "min_aggregate_tokens_per_s must not be negative"),
        (dict(requests=2, max_failures=-1), "max_failures must not be negative"),
        (dict(requests=2, max_tokens=0), "max_tokens must be a whole number of tokens"),
        (dict(requests=2, name="http://x/m"), "contains a URL scheme"),
        (dict(requests=2, host="127.0.0.1:11434"), "not an http(s) URL"),
    ],
)
def test_bad_input_fails_naming_the_option(module_runner, parallel2, tiny_model, args, says):
    result = module_runner("ollama_concurrency", dict(dict(name=tiny_model.ref, host=parallel2.url), **args))
    assert result["failed"] and says in result["msg"], result
    assert "per_request" not in result  # refused before any request was sent
