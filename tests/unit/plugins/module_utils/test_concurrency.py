"""The statistics of a batch of parallel chat requests, computed by hand for small cases."""

from __future__ import annotations

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.concurrency import (
    MAX_REASONS,
    REASON_CHARS,
    RequestOutcome,
    describe,
    failure_reasons,
    percentile,
    summarize,
    validate,
    violations,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import OllamaError, TimedStream

NO_BOUNDS = dict(max_p95_seconds=None, max_ttft_p95_seconds=None, min_aggregate_tokens_per_s=None, max_failures=0)


@pytest.mark.parametrize(
    "values, pct, expected",
    [
        # nearest rank: sorted(values)[ceil(pct/100 * n) - 1]
        ([15, 20, 35, 40, 50], 5, 15),  # ceil(0.25) = 1
        ([15, 20, 35, 40, 50], 30, 20),  # ceil(1.5) = 2
        ([15, 20, 35, 40, 50], 40, 20),  # ceil(2.0) = 2: an exact rank is not rounded up
        ([15, 20, 35, 40, 50], 50, 35),  # ceil(2.5) = 3
        ([15, 20, 35, 40, 50], 100, 50),
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 25, 7),  # ceil(2.5) = 3
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 50, 8),  # ceil(5.0) = 5
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 75, 15),  # ceil(7.5) = 8
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 95, 20),  # ceil(9.5) = 10
        ([0.4, 0.1, 0.3, 0.2], 50, 0.2),  # unsorted input; 4 requests: p50 is the 2nd fastest
        ([0.4, 0.1, 0.3, 0.2], 95, 0.4),  # ceil(3.8) = 4: with 4 requests p95 is the slowest
        (list(range(1, 21)), 95, 19),  # ceil(19.0) = 19, not 20
        ([7.5], 50, 7.5),
        ([7.5], 95, 7.5),
    ],
)
def test_nearest_rank_percentile(values, pct, expected):
    assert percentile(values, pct) == expected


def test_percentile_of_nothing_is_none_and_the_rank_must_be_in_range():
    assert percentile([], 50) is None
    for pct in (0, -5, 100.5):
        with pytest.raises(ValueError, match="outside"):
            percentile([1, 2], pct)


def _outcome(index, seconds, ttft=None, tokens=0, error=None):
    outcome = RequestOutcome(index)
    outcome.seconds, outcome.ttft_seconds, outcome.tokens, outcome.error = seconds, ttft, tokens, error
    return outcome


def test_summary_of_a_queued_batch():
    # NUM_PARALLEL=2, 4 requests of 10 tokens: two served at once, two waiting for their slots
    outcomes = [_outcome(0, 1.0, 0.1, 10), _outcome(1, 1.1, 0.1, 10), _outcome(2, 2.1, 1.1, 10),
                _outcome(3, 2.2, 1.2, 10)]
    stats = summarize(outcomes, wall_seconds=2.5)
    assert stats["requests"] == 4 and stats["succeeded"] == 4 and stats["failures"] == 0
    assert stats["latency_p50_seconds"] == 1.1 and stats["latency_p95_seconds"] == 2.2
    assert stats["ttft_p50_seconds"] == 0.1 and stats["ttft_p95_seconds"] == 1.2
    assert stats["tokens"] == 40 and stats["aggregate_tokens_per_s"] == 16.0  # 40 / 2.5
    assert stats["wall_seconds"] == 2.5 and stats["failure_reasons"] == []
    assert stats["per_request"][2] == dict(request=2, seconds=2.1, ttft_seconds=1.1, tokens=10, error=None)


def test_failed_requests_count_but_stay_out_of_the_percentiles_and_the_rate():
    outcomes = [_outcome(0, 1.0, 0.5, 8), _outcome(1, 3.0, 2.0, 8), _outcome(2, 30.0, error="timed out"),
                _outcome(3, 0.01, error="HTTP 503: server busy")]
    stats = summarize(outcomes, wall_seconds=4.0)
    assert stats["succeeded"] == 2 and stats["failures"] == 2
    assert stats["latency_p50_seconds"] == 1.0 and stats["latency_p95_seconds"] == 3.0  # not 30 nor 0.01
    assert stats["ttft_p95_seconds"] == 2.0
    assert stats["tokens"] == 16 and stats["aggregate_tokens_per_s"] == 4.0
    assert stats["failure_reasons"] == [dict(reason="timed out", count=1),
                                        dict(reason="HTTP 503: server busy", count=1)]


def test_a_batch_where_everything_failed_has_no_percentiles():
    stats = summarize([_outcome(0, 0.2, error="refused"), _outcome(1, 0.2, error="refused")], wall_seconds=0.3)
    assert stats["latency_p50_seconds"] is None and stats["ttft_p95_seconds"] is None
    assert stats["aggregate_tokens_per_s"] == 0.0
    assert stats["failure_reasons"] == [dict(reason="refused", count=2)]
    assert describe(stats) == "2 parallel requests, 2 failed: no request succeeded; failures: 2 x refused"


def test_failure_reasons_are_grouped_bounded_and_cut():
    outcomes = [_outcome(i, 1.0, error=f"reason {i % 7} " + "x" * 1000) for i in range(30)]
    reasons = failure_reasons(outcomes)
    assert len(reasons) == MAX_REASONS
    assert [r["count"] for r in reasons] == [5, 5, 4, 4, 4]  # 30 requests over 7 reasons, first seen first
    assert all(len(r["reason"]) == REASON_CHARS for r in reasons)
    assert reasons[0]["reason"].startswith("reason 0 ")


def test_violations_name_the_option_the_bound_and_the_figure():
    stats = dict(latency_p95_seconds=2.2, ttft_p95_seconds=1.2, aggregate_tokens_per_s=16.0, failures=1)
    bounds = dict(max_p95_seconds=2.0, max_ttft_p95_seconds=5, min_aggregate_tokens_per_s=20, max_failures=0)
    assert violations(stats, bounds) == [
        "latency p95 2.2 s is above max_p95_seconds 2 s",
        "aggregate rate 16 tokens/s is below min_aggregate_tokens_per_s 20 tokens/s",
        "failures 1 is above max_failures 0",
    ]
    met = dict(max_p95_seconds=2.2, max_ttft_p95_seconds=1.2, min_aggregate_tokens_per_s=16, max_failures=1)
    assert violations(stats, met) == []  # a figure equal to its bound meets it
    assert violations(stats, NO_BOUNDS | dict(max_failures=None)) == []


def test_a_latency_bound_cannot_be_met_when_no_request_succeeded():
    stats = dict(latency_p95_seconds=None, ttft_p95_seconds=None, aggregate_tokens_per_s=0.0, failures=2)
    assert violations(stats, dict(max_p95_seconds=5.0, max_failures=2)) == [
        "latency p95 cannot meet max_p95_seconds 5 s: no request succeeded"
    ]


@pytest.mark.parametrize(
    "requests, max_tokens, bounds, says",
    [
        (0, 8, {}, "requests must be a whole number of parallel requests, at least 1 (got 0)"),
        (-3, 8, {}, "requests must be"),
        (True, 8, {}, "requests must be"),
        (2, 0, {}, "max_tokens must be a whole number of tokens, at least 1 (got 0)"),
        (2, 8, dict(max_p95_seconds=-1.0), "max_p95_seconds must not be negative (got -1.0)"),
        (2, 8, dict(max_ttft_p95_seconds=0.0), "max_ttft_p95_seconds must be above 0 seconds"),
        (2, 8, dict(min_aggregate_tokens_per_s=-0.5), "min_aggregate_tokens_per_s must not be negative"),
        (2, 8, dict(max_failures=-1), "max_failures must not be negative"),
        (2, 8, dict(max_p50_seconds=1.0), "unknown bound 'max_p50_seconds'"),
    ],
)
def test_bad_input_names_the_option(requests, max_tokens, bounds, says):
    with pytest.raises(ValueError) as err:
        validate(requests, max_tokens, NO_BOUNDS | bounds)
    assert says in str(err.value)


def test_good_input_passes_validation():
    validate(1, 1, NO_BOUNDS)
    validate(4, 32, dict(max_p95_seconds=0.001, max_ttft_p95_seconds=1, min_aggregate_tokens_per_s=0, max_failures=0))


class Clock:
    """A clock that moves one second each time it is read."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


CHAT_STREAM = [
    {"message": {"role": "assistant", "content": ""}, "done": False},  # read at t=2: nothing generated yet
    {"message": {"role": "assistant", "content": "Hello"}, "done": False},  # t=2 -> first token after 1 s
    {"message": {"role": "assistant", "content": " world"}, "done": False},
    {"message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 2, "done_reason": "stop"},
]


def test_timed_stream_reads_a_chat_stream():
    stream = TimedStream(iter(CHAT_STREAM), clock=Clock())
    assert stream.text == "Hello world" and stream.eval_count == 2
    assert stream.first_token_seconds == 1.0  # clock: start 1, first token 2
    assert stream.seconds == 2.0  # end 3
    assert stream.final["done_reason"] == "stop"


def test_timed_stream_counts_thinking_and_tool_calls_as_first_output():
    thinking = [{"message": {"content": "", "thinking": "hmm"}}, {"message": {"content": ""}, "done": True}]
    assert TimedStream(thinking, clock=Clock()).first_token_seconds == 1.0
    tool = [{"message": {"content": "", "tool_calls": [{"function": {"name": "f"}}]}}, {"done": True}]
    assert TimedStream(tool, clock=Clock()).first_token_seconds == 1.0


def test_timed_stream_reads_a_generate_stream():
    events = [{"response": "ok", "done": False}, {"response": "", "done": True, "eval_count": 1}]
    stream = TimedStream(events, clock=Clock())
    assert stream.text == "ok" and stream.eval_count == 1 and stream.first_token_seconds == 1.0


def test_a_stream_without_a_final_line_is_a_protocol_error():
    with pytest.raises(OllamaError) as err:
        TimedStream(CHAT_STREAM[:2], clock=Clock())
    assert err.value.kind == "protocol" and "without a final (done) line" in str(err.value)


def test_a_request_that_generated_nothing_failed():
    outcome = RequestOutcome(3)
    outcome.measure(lambda: [{"message": {"content": ""}, "done": True, "eval_count": 0, "done_reason": "stop"}],
                    clock=Clock())
    assert not outcome.ok and "without generating a token (done_reason 'stop')" in outcome.error
    assert outcome.seconds == 3.0 and outcome.tokens == 0


def test_an_unexpected_exception_becomes_the_requests_error():
    # a mock: a failure no real server can be made to cause (a bug below the client), which in a worker
    # thread would otherwise vanish
    def broken_stream():
        yield CHAT_STREAM[1]
        raise KeyError("boom")

    outcome = RequestOutcome(0)
    outcome.measure(broken_stream, clock=Clock())
    assert outcome.error == "KeyError: 'boom'" and outcome.ttft_seconds is None
