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

The slot curve, what OLLAMA_NUM_PARALLEL buys on a CPU node: the same batch of SLOT_REQUESTS chats at
once (ollama_concurrency's run_chat_batch) against three servers that differ only in
OLLAMA_NUM_PARALLEL (1, 2, 4), each serving the same generated 512 MiB Q4_K_M model of real width
(tests/services/models.py, as bench_roofline's), num_thread left at Ollama's default (the physical
cores). Decode is memory-bound: slots batched into one forward pass share each read of the weights, so
aggregate tokens per second may grow with slots while each request's share shrinks. The servers take
turns in each of SLOT_ROUNDS rounds, rotating who goes first; the figures are medians over the rounds,
slots_<n>_aggregate_tps_ratio and slots_<n>_latency_p95_ratio against OLLAMA_NUM_PARALLEL=1 in the
same run. Written as a table and a plot (benchmarks/curves.py: build/benchmarks/parallel.svg and .md).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import urllib.request
from pathlib import Path

from benchmarks import curves
from benchmarks.measure import import_work_tree, make_model, stopped_since
from tests.services import process
from tests.services.models import make_quantised_model
from tests.services.ollama import OllamaServer
from tests.services.registry import Registry

REQUESTS = 4
ROUNDS = 5
# long enough that generating dominates a request (as in test_ollama_concurrency)
MAX_TOKENS = 256
PROMPT = "Say hello to the world."
TIMEOUT = 300
SLOTS = (1, 2, 4)
SLOT_REQUESTS = 4
SLOT_ROUNDS = 3
# large enough to leave the caches (decode reads it all per step), small enough for three servers' runs
SLOT_MODEL_MB = 512
# fewer than MAX_TOKENS: this model decodes at tens of tokens per second on two cores, far fewer when shared
SLOT_TOKENS = 24


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


def _slot_curve(work: Path, concurrency, client_class) -> dict[int, dict[str, float]]:
    """{slots: {"tps": aggregate tok/s, "latency": p95 s}} as medians over SLOT_ROUNDS rounds."""
    gguf_path = work / "slots.gguf"
    make_quantised_model(gguf_path, seed=SLOT_MODEL_MB, size_mb=SLOT_MODEL_MB, quant="q4_k_m", n_ff=8192)
    (work / "Modelfile").write_text(f"FROM {gguf_path}\n")
    model = "bench/slots:latest"
    measured = {slots: {"tps": [], "latency": []} for slots in SLOTS}
    with contextlib.ExitStack() as stack:
        clients = {}
        for slots in SLOTS:
            server = stack.enter_context(OllamaServer.start(work / f"slots-{slots}",
                                                            env={"OLLAMA_NUM_PARALLEL": str(slots)}))
            server.cli("create", model, "-f", str(work / "Modelfile"), timeout=1800)
            clients[slots] = client_class(host=server.url, timeout=30)
        gguf_path.unlink()  # each store holds its own copy

        def batch(slots: int, requests: int) -> dict:
            stats = concurrency.run_chat_batch(clients[slots], model, requests, PROMPT, SLOT_TOKENS, seed=0,
                                               timeout=TIMEOUT)
            # a model of random weights may draw its end token early: every request must succeed, but
            # the rate counts the tokens generated, whatever their number
            if stats["failures"] or not stats["tokens"]:
                raise RuntimeError(f"{stats['failures']} of {requests} requests failed: {stats['failure_reasons']}")
            return stats

        for slots in SLOTS:
            batch(slots, 1)  # load the model, so that no figure measures a cold load
        for round_index in range(SLOT_ROUNDS):
            shift = round_index % len(SLOTS)
            for slots in SLOTS[shift:] + SLOTS[:shift]:
                stats = batch(slots, SLOT_REQUESTS)
                measured[slots]["tps"].append(stats["tokens"] / stats["wall_seconds"])
                measured[slots]["latency"].append(stats["latency_p95_seconds"])
    return {slots: {key: statistics.median(values) for key, values in figures.items()}
            for slots, figures in measured.items()}


def _slot_figures(curve: dict[int, dict[str, float]], load: float) -> dict[str, float]:
    base = curve[SLOTS[0]]
    figures = {"slots_load_avg_1m": round(load, 2)}
    rows = []
    for slots, point in curve.items():
        tps_ratio, latency_ratio = point["tps"] / base["tps"], point["latency"] / base["latency"]
        figures.update({
            f"slots_{slots}_aggregate_tokens_per_s": round(point["tps"], 2),
            f"slots_{slots}_latency_p95_s": round(point["latency"], 2),
            f"slots_{slots}_aggregate_tps_ratio": round(tps_ratio, 3),
            f"slots_{slots}_latency_p95_ratio": round(latency_ratio, 3),
        })
        rows.append([slots, round(point["tps"], 2), round(tps_ratio, 2), round(point["latency"], 2),
                     round(latency_ratio, 2)])
    xs = list(curve)
    curves.write(
        "parallel",
        f"{SLOT_REQUESTS} chats at once, {SLOT_TOKENS} tokens each, {SLOT_MODEL_MB} MiB Q4_K_M, vs OLLAMA_NUM_PARALLEL "
        f"(load average {load:.2f})",
        [{"title": "aggregate", "xlabel": "OLLAMA_NUM_PARALLEL", "ylabel": "tokens/s", "xs": xs,
          "series": {"aggregate tok/s": [curve[x]["tps"] for x in xs]}},
         {"title": "p95 latency", "xlabel": "OLLAMA_NUM_PARALLEL", "ylabel": "seconds", "xs": xs,
          "series": {"p95 latency s": [curve[x]["latency"] for x in xs]}}],
        ["OLLAMA_NUM_PARALLEL", "aggregate tok/s", "vs 1 slot", "p95 latency s", "vs 1 slot"], rows,
        f"Medians of {SLOT_ROUNDS} rounds; the servers take turns, rotating who goes first.",
    )
    return figures


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
            load = os.getloadavg()[0]
            slot_curve = _slot_curve(work, concurrency, client_class)
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
        **_slot_figures(slot_curve, load),
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
