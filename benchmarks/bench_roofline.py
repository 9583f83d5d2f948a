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
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.measure import PROJECT_ROOT, import_work_tree, module_env, run_module, stopped_since
from tests.services import process
from tests.services.bandwidth_reference import numpy_copy_bandwidth
from tests.services.ollama import OllamaServer

SIZE_MB = 1024
N_EMBD, N_HEAD, N_HEAD_KV, N_FF = 2048, 16, 4, 8192
DECODE_TOKENS = 64
DECODE_RUNS = 3
MODEL = "bench/roofline-q8:latest"


def write_q8_model(path: Path, seed: int, size_mb: int) -> Path:
    """A Q8_0 llama of about size_mb MiB (see the module docstring). Run it in a child process
    (make_q8_model): the writer holds every tensor until it writes the file."""
    import gguf
    import numpy as np

    from tests.services.models import add_llama_vocab

    q8, f32 = gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.F32
    rng = np.random.default_rng(seed)
    block, block_bytes = gguf.GGML_QUANT_SIZES[q8]
    head_dim = N_EMBD // N_HEAD
    kv = N_HEAD_KV * head_dim
    per_layer = (2 * N_EMBD * N_EMBD + 2 * kv * N_EMBD + 3 * N_FF * N_EMBD) // block * block_bytes
    n_layer = max(1, -(-size_mb * (1 << 20) // per_layer))

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(f"bench-q8-{size_mb}mb-seed{seed}")
    writer.add_context_length(4096)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    n_vocab = add_llama_vocab(writer)

    def add(name: str, rows: int, cols: int) -> None:
        weights = rng.standard_normal((rows, cols), dtype=np.float32) * 0.02
        writer.add_tensor(name, gguf.quants.quantize(weights, q8), raw_dtype=q8)

    add("token_embd.weight", n_vocab, N_EMBD)
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32), raw_dtype=f32)
        add(f"blk.{i}.attn_q.weight", N_EMBD, N_EMBD)
        add(f"blk.{i}.attn_k.weight", kv, N_EMBD)
        add(f"blk.{i}.attn_v.weight", kv, N_EMBD)
        add(f"blk.{i}.attn_output.weight", N_EMBD, N_EMBD)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32), raw_dtype=f32)
        add(f"blk.{i}.ffn_gate.weight", N_FF, N_EMBD)
        add(f"blk.{i}.ffn_up.weight", N_FF, N_EMBD)
        add(f"blk.{i}.ffn_down.weight", N_EMBD, N_FF)
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32), raw_dtype=f32)
    add("output.weight", n_vocab, N_EMBD)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path


def make_q8_model(path: Path, seed: int, size_mb: int) -> float:
    """Write the model in a child process, so the benchmark never holds the weights; seconds it took."""
    code = (
        f"from pathlib import Path; from benchmarks.bench_roofline import write_q8_model; "
        f"write_q8_model(Path({str(path)!r}), seed={seed}, size_mb={size_mb})"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True)
    return time.monotonic() - started


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
        write_seconds = make_q8_model(gguf_path, seed=SIZE_MB, size_mb=SIZE_MB)
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
