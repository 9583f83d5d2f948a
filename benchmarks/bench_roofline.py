"""Decode speed of 1 GiB Q4_K_M and Q8_0 models on real Ollama against the memory-bandwidth roofline; thread curve.

The bandwidth is node_tuning's measurement, plugins/module_utils/memory_bandwidth.py (STREAM Copy, one
forked process per physical core of a NUMA node, best repetition), taken by node_profile_facts run as
Ansible runs it. Its reference is the same kernel by numpy in one thread per worker on the same CPUs
and array sizes (tests/services/bandwidth_reference.py): bandwidth_vs_reference is ours over numpy's,
1.0 when the stdlib method measures what numpy measures. Both are taken twice, before and after the
decodes, and the best of each counts, as STREAM reports the best of its repetitions: on a shared machine
a neighbour's load only ever lowers a figure.

The models are generated (tests/services/models.py): llamas of 2048-wide layers with grouped-query
attention (16 heads, 4 KV heads) and an 8192-wide feed-forward block, like real models, layers added
until the file is 1 GiB, so that the weights leave every cache; one Q4_K_M (Q4_K matrices, Q6_K
attention values and output, the file type of qwen2.5:72b), one Q8_0. An f16 model of narrow layers
would be compute-bound on a CPU and say nothing about the roofline. Ollama generates DECODE_TOKENS
tokens with num_thread = the measurement's workers (one per physical core), after a first request
that loads the model; the best of DECODE_RUNS decode rates (eval_count / eval_duration) counts.

decode_roofline_pct_<quant> is that rate over the roofline, the bandwidth over the bytes read per token
(the model file's size, what sizing.decode_tokens_per_s divides by), in percent; decode_roofline_pct is
the lower of the two. Published CPU runs reach 55-75 %.

ollama_isa names the ggml CPU variant whose features the server's kernels report (its startup line
`msg=system CPU.0.AVX2=1 ...`, read by tools/ggml_cpu_variant.py): `make setup` builds the variant
Ollama's release loads on the machine; `x64` means baseline kernels, which make decode compute-bound.

The thread curve: decode and prompt tokens per second of the Q4_K_M model for num_thread 1..cores
(prompt: PROMPT_WORDS words, a new prefix each time so that no slot reuses a cached prompt), as a
table and a plot (benchmarks/curves.py: build/benchmarks/threads.svg and .md);
threads_decode_scaling is decode at all cores over decode at one thread.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from pathlib import Path

from benchmarks import curves
from benchmarks.measure import import_work_tree, module_env, run_module, stopped_since
from tests.services import process
from tests.services.bandwidth_reference import numpy_copy_bandwidth
from tests.services.models import make_quantised_model
from tests.services.ollama import OllamaServer
from tools.ggml_cpu_variant import reported_features, variant_of

SIZE_MB = 1024
N_FF = 8192  # wider than bench_model_info's: decode reads more weights per token
QUANTS = ("q4_k_m", "q8_0")
CURVE_QUANT = "q4_k_m"  # the file type of the models the collection is sized for (qwen2.5:72b)
DECODE_TOKENS = 64
DECODE_RUNS = 3
CURVE_RUNS = 2
# long enough that prompt processing (batched, compute-bound) is timed over many tokens
PROMPT_WORDS = 200
NUM_CTX = 512


def _generate(server: OllamaServer, body: dict) -> dict:
    req = urllib.request.Request(server.url + "/api/generate", data=json.dumps({"stream": False, **body}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=1800) as resp:
        return json.loads(resp.read())


def _bandwidth(work: Path, env: dict) -> tuple[dict, dict]:
    """node_tuning's measurement (run as Ansible runs the module) and the numpy reference on its CPUs."""
    _, _, out = run_module("node_profile_facts", {"measure_bandwidth": True, "isa_policy": "ignore"}, work, env)
    if out.get("failed"):
        raise RuntimeError(f"node_profile_facts failed: {out.get('msg')}")
    ours = out["ansible_facts"]["ollama_node_profile"]["memory_bandwidth"]
    if not ours:
        status = out["ansible_facts"]["ollama_node_profile"]["memory_bandwidth_status"]
        raise RuntimeError(f"no bandwidth measured: {status}")
    return ours, numpy_copy_bandwidth(ours["cpus"], ours["array_bytes"])


class _Runs:
    """Requests to one loaded model at one num_thread; a change of num_thread reloads the runner, so the
    first request (one token) loads it before anything is timed."""

    def __init__(self, server: OllamaServer, model: str):
        self.server, self.model, self.count = server, model, 0

    def load(self, threads: int) -> None:
        self._ask(threads, "hello", 1)

    def decode(self, threads: int) -> float:
        done = self._ask(threads, "the model is ready", DECODE_TOKENS)
        if done.get("eval_count", 0) < 2 or not done.get("eval_duration"):
            raise RuntimeError(f"the model generated too few tokens to time: {done}")
        return done["eval_count"] / (done["eval_duration"] / 1e9)

    def prompt(self, threads: int) -> float:
        words = " ".join(("the model", "is ready", "hello world", "a model")[i % 4] for i in range(PROMPT_WORDS // 2))
        done = self._ask(threads, words, 1)
        if done.get("prompt_eval_count", 0) < PROMPT_WORDS // 2 or not done.get("prompt_eval_duration"):
            raise RuntimeError(f"the prompt was not evaluated in full (a cached prefix?): {done}")
        return done["prompt_eval_count"] / (done["prompt_eval_duration"] / 1e9)

    def _ask(self, threads: int, text: str, tokens: int) -> dict:
        # a new first word each time: Ollama reuses a slot's cached prefix, which would leave nothing to time
        self.count += 1
        options = {"num_thread": threads, "num_predict": tokens, "temperature": 0, "seed": 1, "num_ctx": NUM_CTX}
        return _generate(self.server, {"model": self.model, "prompt": f"{self.count} {text}", "options": options})

    def unload(self) -> None:
        _generate(self.server, {"model": self.model, "keep_alive": 0})


def _thread_curve(runs: _Runs, cores: int) -> list[tuple[int, float, float]]:
    """(threads, decode tok/s, prompt tok/s) for 1..cores threads, the best of CURVE_RUNS each."""
    curve = []
    for threads in range(1, cores + 1):
        runs.load(threads)
        decode = max(runs.decode(threads) for _ in range(CURVE_RUNS))
        prompt = max(runs.prompt(threads) for _ in range(CURVE_RUNS))
        curve.append((threads, decode, prompt))
    return curve


def run() -> dict[str, float]:
    import_work_tree()
    from ansible_collections.aiplatform.ollama.plugins.module_utils.sizing import decode_tokens_per_s

    started = len(process.STARTED)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_roofline_") as tmp:
        work = Path(tmp)
        env = module_env(work)
        measured = [_bandwidth(work, env)]
        threads = measured[0][0]["workers"]

        sizes, write_seconds, decode, curve = {}, {}, {}, []
        with OllamaServer.start(work / "ollama", env={"OLLAMA_NUM_PARALLEL": "1"}) as server:
            for quant in QUANTS:
                gguf_path = work / f"{quant}.gguf"
                write_seconds[quant] = make_quantised_model(gguf_path, seed=SIZE_MB, size_mb=SIZE_MB, quant=quant,
                                                            n_ff=N_FF)
                sizes[quant] = gguf_path.stat().st_size
                (work / "Modelfile").write_text(f"FROM {gguf_path}\n")
                server.cli("create", f"bench/roofline-{quant}:latest", "-f", str(work / "Modelfile"), timeout=1800)
                gguf_path.unlink()  # the store holds its own copy
            for quant in QUANTS:
                runs = _Runs(server, f"bench/roofline-{quant}:latest")
                try:
                    runs.load(threads)
                    decode[quant] = max(runs.decode(threads) for _ in range(DECODE_RUNS))
                    if quant == CURVE_QUANT:
                        curve = _thread_curve(runs, threads)
                finally:
                    runs.unload()
            log = server.log_tail(2000)
        measured.append(_bandwidth(work, env))
    stopped_since(started)

    bandwidth = max(ours["bytes_per_s"] for ours, _ref in measured)
    reference = max(ref["bytes_per_s"] for _ours, ref in measured)
    system_line = next((line for line in log.splitlines() if "msg=system " in line), "")
    if system_line:
        print(f"# ollama's ggml: {system_line.split('msg=system ', 1)[1].strip()[:300]}", flush=True)
    figures = {
        "ollama_isa": variant_of(reported_features(log)),
        "roofline_load_avg_1m": round(load, 2),
        "roofline_threads": threads,
        "roofline_bandwidth_gb_s": round(bandwidth / 1e9, 2),
        "roofline_reference_gb_s": round(reference / 1e9, 2),
        "bandwidth_vs_reference": round(bandwidth / reference, 3),
    }
    pcts = []
    for quant in QUANTS:
        roofline = decode_tokens_per_s(bandwidth, sizes[quant], 1.0)
        pct = 100.0 * decode[quant] / roofline
        pcts.append(pct)
        figures.update({
            f"roofline_model_mb_{quant}": round(sizes[quant] / 2**20, 1),
            f"roofline_model_write_seconds_{quant}": round(write_seconds[quant], 1),
            f"roofline_tokens_per_s_{quant}": round(roofline, 2),
            f"roofline_decode_tokens_per_s_{quant}": round(decode[quant], 2),
            f"roofline_weights_gb_s_{quant}": round(decode[quant] * sizes[quant] / 1e9, 2),
            f"decode_roofline_pct_{quant}": round(pct, 1),
        })
    figures["decode_roofline_pct"] = round(min(pcts), 1)
    figures["roofline_load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    if max(pcts + [100.0 * d / decode_tokens_per_s(bandwidth, sizes[CURVE_QUANT], 1.0) for _t, d, _p in curve]) > 100:
        # a decode cannot read weights faster than the memory delivers them: the copy workers were starved
        print("# a decode beat the roofline: the bandwidth measurement was starved by other work on the "
              "machine (see the load averages); these percentages overstate the efficiency", flush=True)

    roofline = decode_tokens_per_s(bandwidth, sizes[CURVE_QUANT], 1.0)
    rows = [[t, round(d, 2), round(100.0 * d / roofline, 1), round(p, 1)] for t, d, p in curve]
    curves.write(
        "threads",
        f"{CURVE_QUANT} {sizes[CURVE_QUANT] / 2**20:.0f} MiB on Ollama {figures['ollama_isa']} kernels: tokens/s vs "
        f"num_thread (load average {load:.2f}; roofline {roofline:.1f} tok/s at {bandwidth / 1e9:.1f} GB/s)",
        [{"title": "decode", "xlabel": "num_thread", "ylabel": "tokens/s", "xs": [t for t, _d, _p in curve],
          "series": {"decode tok/s": [d for _t, d, _p in curve], "roofline": [roofline] * len(curve)}},
         {"title": "prompt", "xlabel": "num_thread", "ylabel": "tokens/s", "xs": [t for t, _d, _p in curve],
          "series": {"prompt tok/s": [p for _t, _d, p in curve]}}],
        ["num_thread", "decode tok/s", "% of roofline", "prompt tok/s"], rows,
        f"Best of {CURVE_RUNS} runs per point; decode of {DECODE_TOKENS} tokens, prompt of about "
        f"{PROMPT_WORDS} tokens.",
    )
    for t, d, p in curve:
        figures[f"threads_{t}_decode_tokens_per_s"] = round(d, 2)
        figures[f"threads_{t}_prompt_tokens_per_s"] = round(p, 1)
    figures["threads_decode_scaling"] = round(curve[-1][1] / curve[0][1], 3)
    figures["threads_prompt_scaling"] = round(curve[-1][2] / curve[0][2], 3)
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}={value}")
