"""Decode speed of a 1 GiB Q8_0 model on real Ollama against the memory-bandwidth roofline measured in the same run.

The bandwidth is node_tuning's measurement, plugins/module_utils/memory_bandwidth.py (STREAM Copy, one
forked process per physical core of a NUMA node, best repetition), taken by node_profile_facts run as
Ansible runs it. Its reference is the same kernel by numpy in one thread per worker on the same CPUs
and array sizes (tests/services/bandwidth_reference.py): bandwidth_vs_reference is ours over numpy's,
1.0 when the stdlib method measures what numpy measures. Both are taken twice, before and after the
decode, and the best of each counts, as STREAM reports the best of its repetitions: on a shared machine
a neighbour's load only ever lowers a figure.

The model is generated: a llama of 2048-wide layers with grouped-query attention (16 heads, 4 KV heads)
and an 8192-wide feed-forward block, like real models, layers added until the file is 1 GiB, every
matrix random normal numbers quantised to Q8_0 by the gguf package (gguf.quants.quantize); the
vocabulary is tests/services/models.py's. An f16 model of narrow layers would be compute-bound on a CPU
and say nothing about the roofline. Ollama generates DECODE_TOKENS tokens with num_thread = the
measurement's workers, after a first request that loads the model; the best of DECODE_RUNS decode
rates (eval_count / eval_duration) counts. It prints the CPU features ggml was built with: the Ollama
`make setup` builds from its Go module lists no SIMD feature (only LLAMAFILE), and its decode grows with
threads (here 1 thread decoded 5.5 tok/s, 2 threads 10.5, while 1 copy worker streams about 20 GB/s of
the 2 workers' 25-38): its dot products, not memory, are the limit on this machine.

decode_roofline_pct is that rate over the roofline, the bandwidth over the bytes read per token (the
model file's size, what sizing.decode_tokens_per_s divides by), in percent. Published CPU runs reach
55-75 %.
"""

from __future__ import annotations

import json
import tempfile
import urllib.request
from pathlib import Path

from benchmarks.measure import import_work_tree, module_env, run_module, stopped_since
from tests.services import process
from tests.services.bandwidth_reference import numpy_copy_bandwidth
from tests.services.models import make_quantised_model
from tests.services.ollama import OllamaServer

SIZE_MB = 1024
N_FF = 8192  # wider than bench_model_info's: decode reads more weights per token
DECODE_TOKENS = 64
DECODE_RUNS = 3
MODEL = "bench/roofline-q8:latest"


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


def run() -> dict[str, float]:
    import_work_tree()
    from ansible_collections.aiplatform.ollama.plugins.module_utils.sizing import decode_tokens_per_s

    started = len(process.STARTED)
    with tempfile.TemporaryDirectory(prefix="bench_roofline_") as tmp:
        work = Path(tmp)
        env = module_env(work)
        measured = [_bandwidth(work, env)]

        gguf_path = work / "q8.gguf"
        write_seconds = make_quantised_model(gguf_path, seed=SIZE_MB, size_mb=SIZE_MB, quant="q8_0", n_ff=N_FF)
        model_bytes = gguf_path.stat().st_size
        threads = measured[0][0]["workers"]
        with OllamaServer.start(work / "ollama", env={"OLLAMA_NUM_PARALLEL": "1"}) as server:
            (work / "Modelfile").write_text(f"FROM {gguf_path}\n")
            server.cli("create", MODEL, "-f", str(work / "Modelfile"), timeout=1800)
            gguf_path.unlink()  # the store holds its own copy
            options = {"num_thread": threads, "num_predict": DECODE_TOKENS, "temperature": 0, "seed": 1,
                       "num_ctx": 512}
            _generate(server, {"model": MODEL, "prompt": "hello", "options": {**options, "num_predict": 1}})
            runs = []
            try:
                for attempt in range(DECODE_RUNS):
                    done = _generate(server, {"model": MODEL, "prompt": f"the model is ready {attempt}",
                                              "options": options})
                    if done.get("eval_count", 0) < 2 or not done.get("eval_duration"):
                        raise RuntimeError(f"the model generated too few tokens to time: {done}")
                    runs.append(done["eval_count"] / (done["eval_duration"] / 1e9))
            finally:
                _generate(server, {"model": MODEL, "keep_alive": 0})
            # ggml's CPU features as built ("msg=system CPU.0.AVX2=1 ..."): without SIMD decode is compute-bound
            system_info = next((line for line in server.log_tail(400).splitlines() if "msg=system " in line), "")
        measured.append(_bandwidth(work, env))
    stopped_since(started)

    bandwidth = max(ours["bytes_per_s"] for ours, _ref in measured)
    reference = max(ref["bytes_per_s"] for _ours, ref in measured)
    decode = max(runs)
    roofline = decode_tokens_per_s(bandwidth, model_bytes, 1.0)
    if system_info:
        print(f"# ollama's ggml: {system_info.split('msg=system ', 1)[1].strip()[:300]}", flush=True)
    return {
        "roofline_model_mb": round(model_bytes / 2**20, 1),
        "roofline_model_write_seconds": round(write_seconds, 1),
        "roofline_threads": threads,
        "roofline_bandwidth_gb_s": round(bandwidth / 1e9, 2),
        "roofline_reference_gb_s": round(reference / 1e9, 2),
        "bandwidth_vs_reference": round(bandwidth / reference, 3),
        "roofline_tokens_per_s": round(roofline, 2),
        "roofline_decode_tokens_per_s": round(decode, 2),
        "roofline_weights_gb_s": round(decode * model_bytes / 1e9, 2),
        "decode_roofline_pct": round(100.0 * decode / roofline, 1),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}={value}")
