# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""N streaming chat requests sent to an Ollama server at once, and their statistics.

kagent fans one task out to several agents that call the model at the same moment. Ollama serves
OLLAMA_NUM_PARALLEL requests of a model together and queues the others, so a queued request's time
to first token includes its wait for a slot: one request at a time hides exactly what agents see.

Percentiles use the nearest-rank method (see `percentile`): a reported p95 is a latency some request
really had, never an interpolation between two.
"""

from __future__ import annotations

import math
import threading
import time

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import OllamaError, TimedStream

# A batch where every request fails the same way should say so once, not N times.
MAX_REASONS = 5
REASON_CHARS = 300

# option name -> (statistic, "max" or "min", what the statistic is called in a message, unit)
BOUNDS = {
    "max_p95_seconds": ("latency_p95_seconds", "max", "latency p95", "s"),
    "max_ttft_p95_seconds": ("ttft_p95_seconds", "max", "time to first token p95", "s"),
    "min_aggregate_tokens_per_s": ("aggregate_tokens_per_s", "min", "aggregate rate", "tokens/s"),
    "max_failures": ("failures", "max", "failures", ""),
}


def percentile(values, pct):
    """The nearest-rank percentile: the smallest value such that at least pct % of the values are less
    than or equal to it, i.e. sorted(values)[ceil(pct / 100 * n) - 1]. None when there are no values.

    With 4 values, p50 is the 2nd smallest and p95 the largest; with 20, p95 is the 19th.
    """
    if not 0 < pct <= 100:
        raise ValueError(f"percentile {pct!r} is outside (0, 100]")
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(pct * len(ordered) / 100)) - 1]


def validate(requests, max_tokens, bounds):
    """Raise ValueError naming the option when an input cannot describe a check."""
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise ValueError(f"requests must be a whole number of parallel requests, at least 1 (got {requests!r})")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a whole number of tokens, at least 1 (got {max_tokens!r})")
    for option, value in bounds.items():
        if option not in BOUNDS:
            raise ValueError(f"unknown bound {option!r}: one of {', '.join(BOUNDS)}")
        if value is None:
            continue
        if value < 0:
            raise ValueError(f"{option} must not be negative (got {value!r}); leave it unset for no bound")
        if option in ("max_p95_seconds", "max_ttft_p95_seconds") and value == 0:
            # no request answers in no time: a bound of 0 can only fail
            raise ValueError(f"{option} must be above 0 seconds (got {value!r}); leave it unset for no bound")


class RequestOutcome:
    """What one request of the batch saw: seconds to its end (or failure), to its first token, and tokens."""

    def __init__(self, index):
        self.index = index
        self.seconds = None
        self.ttft_seconds = None
        self.tokens = 0
        self.error = None

    def measure(self, send, clock=time.monotonic):
        """Send one request (send() -> its stream of chat events) and read it to its end; any failure
        becomes this request's error, never the batch's."""
        started = clock()
        try:
            stream = TimedStream(send(), clock=clock)
        except OllamaError as err:
            self.error = str(err)
        except Exception as err:  # a worker thread that raised would only vanish: record what broke
            self.error = f"{type(err).__name__}: {err}"
        else:
            self.ttft_seconds = stream.first_token_seconds
            self.tokens = stream.eval_count
            if self.tokens < 1:
                self.error = "the server answered without generating a token (done_reason {!r})".format(
                    stream.final.get("done_reason")
                )
        self.seconds = clock() - started

    @property
    def ok(self):
        return self.error is None

    def as_dict(self):
        return dict(
            request=self.index,
            seconds=_round(self.seconds),
            ttft_seconds=_round(self.ttft_seconds),
            tokens=self.tokens,
            error=self.error,
        )


def _round(value, digits=3):
    return None if value is None else round(value, digits)


def failure_reasons(outcomes):
    """The distinct errors of the failed requests with how many had each, first seen first, at most
    MAX_REASONS of them, each cut to REASON_CHARS."""
    counts = {}
    for outcome in outcomes:
        if not outcome.ok:
            reason = outcome.error[:REASON_CHARS]
            counts[reason] = counts.get(reason, 0) + 1
    return [dict(reason=reason, count=count) for reason, count in list(counts.items())[:MAX_REASONS]]


def summarize(outcomes, wall_seconds):
    """The batch's statistics. Latency and TTFT percentiles are over the requests that succeeded; the
    aggregate rate is the tokens they generated over the wall time of the whole batch."""
    ok = [o for o in outcomes if o.ok]
    tokens = sum(o.tokens for o in ok)
    latencies = [o.seconds for o in ok]
    ttfts = [o.ttft_seconds for o in ok]
    return dict(
        requests=len(outcomes),
        succeeded=len(ok),
        failures=len(outcomes) - len(ok),
        failure_reasons=failure_reasons(outcomes),
        latency_p50_seconds=_round(percentile(latencies, 50)),
        latency_p95_seconds=_round(percentile(latencies, 95)),
        ttft_p50_seconds=_round(percentile(ttfts, 50)),
        ttft_p95_seconds=_round(percentile(ttfts, 95)),
        tokens=tokens,
        aggregate_tokens_per_s=round(tokens / wall_seconds, 2) if wall_seconds > 0 else 0.0,
        wall_seconds=_round(wall_seconds),
        per_request=[o.as_dict() for o in outcomes],
    )


def run_batch(send, requests, clock=time.monotonic):
    """Call send() -> a stream of chat events from `requests` threads released together, and summarize.

    The threads wait at a barrier so every request leaves at the same moment, as a fan-out's do; the
    wall time runs from that release to the end of the last request.
    """
    outcomes = [RequestOutcome(i) for i in range(requests)]
    gate = threading.Barrier(requests + 1)

    def worker(outcome):
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            outcome.error = "the batch was aborted before this request was sent"
            return
        outcome.measure(send, clock=clock)

    threads = [threading.Thread(target=worker, args=(o,), name=f"chat-{o.index}", daemon=True) for o in outcomes]
    try:
        for thread in threads:
            thread.start()
    except RuntimeError:
        gate.abort()  # the threads already waiting must not wait forever for those that never started
        raise
    gate.wait()
    started = clock()
    for thread in threads:
        thread.join()
    return summarize(outcomes, clock() - started)


def run_chat_batch(client, model, requests, prompt, max_tokens, seed, timeout):
    """`requests` streaming `/api/chat` requests at once through `client`, each reading every line of its
    answer with `timeout` seconds allowed between two lines (the first one waits for a slot, maybe a load).

    First asks `GET /api/version` within the client's own (short) timeout and raises OllamaError when
    that fails: a server that is not there is one error found in seconds, not N requests that each wait
    `timeout` to say so.

    Ansible's URL layer installs each request's opener as urllib's global one before opening it; the
    threads all build theirs from this one client's settings, so whichever a request uses is the same.
    """
    client.version()
    messages = [{"role": "user", "content": prompt}]
    # temperature 0 and one seed: every request generates the same tokens, so the spread of the figures
    # is the server's queueing, not the length of the answers
    options = {"num_predict": max_tokens, "seed": seed, "temperature": 0}
    return run_batch(lambda: client.chat(model, messages, options=options, timeout=timeout), requests)


def violations(stats, bounds):
    """One sentence per bound the statistics break: the measured figure, the option and its bound.
    `bounds` maps option names of BOUNDS to a bound, or None for no bound."""
    found = []
    for option, bound in bounds.items():
        if bound is None:
            continue
        key, kind, label, unit = BOUNDS[option]
        value = stats.get(key)
        suffix = f" {unit}" if unit else ""
        if value is None:
            found.append(f"{label} cannot meet {option} {bound:g}{suffix}: no request succeeded")
        elif kind == "max" and value > bound:
            found.append(f"{label} {value:g}{suffix} is above {option} {bound:g}{suffix}")
        elif kind == "min" and value < bound:
            found.append(f"{label} {value:g}{suffix} is below {option} {bound:g}{suffix}")
    return found


def describe(stats):
    """The batch's figures in one line."""
    if not stats["succeeded"]:
        figures = "no request succeeded"
    else:
        figures = (
            "latency p50 {latency_p50_seconds:g} s / p95 {latency_p95_seconds:g} s, time to first token p50 "
            "{ttft_p50_seconds:g} s / p95 {ttft_p95_seconds:g} s, {tokens} tokens at {aggregate_tokens_per_s:g} "
            "tokens/s aggregate over {wall_seconds:g} s"
        ).format(**stats)
    count = stats["requests"]
    text = "{} parallel request{}, {} failed: {}".format(count, "" if count == 1 else "s", stats["failures"], figures)
    if stats["failure_reasons"]:
        text += "; failures: " + "; ".join(
            "{} x {}".format(r["count"], r["reason"]) for r in stats["failure_reasons"]
        )
    return text
