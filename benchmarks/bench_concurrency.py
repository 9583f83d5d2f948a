"""Four chat requests at once on a real Ollama with two slots (OLLAMA_NUM_PARALLEL=2) against the same four one by one.

What a multi-agent fan-out meets: module_utils/concurrency.run_chat_batch sends 4 streaming /api/chat
requests together (requests=4), as ollama_concurrency does; the baseline is the same 4 requests sent
one after another (requests=1, four times), in the same run, against the same server and loaded
model (the tiny generated model, pulled from a real registry and loaded before anything is timed).
Every request generates the same MAX_TOKENS tokens (temperature 0, one seed), so the figures differ
only by how the server serves them:

concurrency_aggregate_tps_ratio
    Tokens per second over the batch's wall time, parallel over sequential: what two slots gain.
concurrency_ttft_p95_ratio
    p95 (nearest rank: of 4, the largest) time to first token, parallel over sequential: the two
    requests beyond the slots wait for a slot, which one request at a time never shows.
concurrency_latency_p95_ratio
    p95 request latency, parallel over sequential.

The two orders alternate over ROUNDS rounds and each ratio is the median of the rounds' ratios: on
a shared 2-core machine a request run alone was seen to take from 0.6 s to 6 s within one run while
other work used the cores, so single rounds spread widely.
The sequential requests' first token comes within a few milliseconds, and run_chat_batch reports
times to the millisecond, so concurrency_ttft_p95_ratio is large and coarse: read it as the order of
magnitude a queued request waits, beside concurrency_parallel_ttft_p95_s.
"""

from __future__ import annotations

import statistics
import tempfile
import urllib.request
from pathlib import Path

from benchmarks.measure import import_work_tree, make_model, stopped_since
from tests.services import process
from tests.services.ollama import OllamaServer
from tests.services.registry import Registry

REQUESTS = 4
ROUNDS = 5
# long enough that generating dominates a request (as in test_ollama_concurrency_real)
MAX_TOKENS = 256
PROMPT = "Say hello to the world."
TIMEOUT = 300


def _import_concurrency():
    """module_utils as Ansible imports them: the work tree as ansible_collections.aiplatform.ollama."""
    import_work_tree()
    from ansible_collections.aiplatform.ollama.plugins.module_utils import concurrency
    from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import OllamaClient

    return concurrency, OllamaClient


def _check(stats: dict, requests: int) -> dict:
    if stats["failures"] or stats["succeeded"] != requests:
        raise RuntimeError(f"{stats['failures']} of {requests} requests failed: {stats['failure_reasons']}")
    if stats["tokens"] != requests * MAX_TOKENS:
        raise RuntimeError(f"expected {requests * MAX_TOKENS} tokens, got {stats['tokens']}: {stats['per_request']}")
    return stats


def run() -> dict[str, float]:
    started = len(process.STARTED)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_concurrency_") as tmp:
            work = Path(tmp)
            concurrency, client_class = _import_concurrency()
            with Registry.start(work / "registry") as registry, \
                    OllamaServer.start(work / "ollama", env={"OLLAMA_NUM_PARALLEL": "2"}) as server:
                model = registry.push_model(make_model(work / "tiny.gguf", seed=0, size_mb=0),
                                            name="bench/concurrency-tiny", tag="latest")
                server.cli("pull", "--insecure", model.ref)
                client = client_class(host=server.url, timeout=30)

                def batch(requests: int) -> dict:
                    stats = concurrency.run_chat_batch(client, model.ref, requests, PROMPT, MAX_TOKENS, seed=0,
                                                       timeout=TIMEOUT)
                    return _check(stats, requests)

                batch(1)  # load the model, so that no figure measures a cold load
                rounds = []
                for round_index in range(ROUNDS):
                    # alternate who goes first, so neither always runs after the other
                    order = ("sequential", "parallel") if round_index % 2 == 0 else ("parallel", "sequential")
                    measured = {}
                    for who in order:
                        if who == "sequential":
                            measured[who] = [batch(1) for _ in range(REQUESTS)]
                        else:
                            measured[who] = batch(REQUESTS)
                    rounds.append(measured)
    finally:
        # Ansible's URL layer installs its opener as urllib's global one; drop it, as a module process would
        urllib.request.install_opener(None)
    stopped_since(started)

    ratios = {"aggregate_tps": [], "ttft_p95": [], "latency_p95": []}
    figures = {"seq": {"tps": [], "ttft": [], "latency": []}, "par": {"tps": [], "ttft": [], "latency": []}}
    for measured in rounds:
        sequential, parallel = measured["sequential"], measured["parallel"]
        seq_tps = sum(s["tokens"] for s in sequential) / sum(s["wall_seconds"] for s in sequential)
        seq_ttft = concurrency.percentile([s["per_request"][0]["ttft_seconds"] for s in sequential], 95)
        seq_latency = concurrency.percentile([s["per_request"][0]["seconds"] for s in sequential], 95)
        par_tps = parallel["tokens"] / parallel["wall_seconds"]
        if not seq_ttft or not seq_latency:
            raise RuntimeError(f"a sequential request took no measurable time (to the ms): {sequential}")
        ratios["aggregate_tps"].append(par_tps / seq_tps)
        ratios["ttft_p95"].append(parallel["ttft_p95_seconds"] / seq_ttft)
        ratios["latency_p95"].append(parallel["latency_p95_seconds"] / seq_latency)
        for key, seq, par in (("tps", seq_tps, par_tps), ("ttft", seq_ttft, parallel["ttft_p95_seconds"]),
                              ("latency", seq_latency, parallel["latency_p95_seconds"])):
            figures["seq"][key].append(seq)
            figures["par"][key].append(par)

    def median(values: list[float], digits: int = 3) -> float:
        return round(statistics.median(values), digits)

    return {
        "concurrency_sequential_tokens_per_s": median(figures["seq"]["tps"], 1),
        "concurrency_parallel_tokens_per_s": median(figures["par"]["tps"], 1),
        "concurrency_aggregate_tps_ratio": median(ratios["aggregate_tps"]),
        "concurrency_sequential_ttft_p95_s": median(figures["seq"]["ttft"]),
        "concurrency_parallel_ttft_p95_s": median(figures["par"]["ttft"]),
        "concurrency_ttft_p95_ratio": median(ratios["ttft_p95"]),
        "concurrency_sequential_latency_p95_s": median(figures["seq"]["latency"]),
        "concurrency_parallel_latency_p95_s": median(figures["par"]["latency"]),
        "concurrency_latency_p95_ratio": median(ratios["latency_p95"]),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}={value}")
