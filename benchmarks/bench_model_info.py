"""ollama_model_info on a 1 GiB Q4_K_M model: the bytes it reads, and its memory sizing against a real load.

The model is generated: a llama of 2048-wide layers with grouped-query attention (16 heads, 4 KV
heads) and a 5632-wide feed-forward block, layers added until the file is 1 GiB, its matrices
written as Q4_K blocks (attention values and the output as Q6_K) as tests/services/gguf_samples.py
writes them, but of random bytes with valid scales, so that the runner computes with real numbers;
the vocabulary is tests/services/models.py's, which Ollama tokenizes. The gguf package writes it
in a few seconds here (model_info_write_seconds), well within the minute allowed for it.

The module runs as Ansible runs it (its own Python process reading an args file) against a real
registry whose blob downloads go to its CDN; the CDN's access log gives the bytes that really left
it. The baseline of the read figures is the model layer itself: model_info_read_ratio is bytes read
over blob size.

The sizing figures compare the module's prediction with what a real Ollama 0.18.3 shows once it has
pulled and loaded the model and processed a prompt longer than the context (so that the context and
a full batch are in use), measured as tests/integration/ollama_modules/test_ollama_model_info_registry_and_store.py
measures it: /api/ps `size` against `memory.ollama_ps_bytes`, and the runner's peak RSS plus the
server's RSS against `memory.total_bytes`. sizing_error_pct is the worse of the two, in percent of
the measured figure. The context is 256 tokens, the smallest llama.cpp does not pad (it rounds the
context up to a multiple of 256, which the sizing does not model). Processing it is most of the
benchmark's time: about 3 minutes on 2 cores, where the Ollama that `make setup` builds takes about
0.8 s a token for this model (its ggml lists no AVX features in its system line).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.measure import module_env, run_module, stopped_since
from tests.services import process
from tests.services.models import make_quantised_model
from tests.services.ollama import OllamaServer
from tests.services.registry import Registry

SIZE_MB = 1024
NUM_CTX = 256  # a multiple of 256 (llama.cpp pads the context to one); filled, so a full batch runs
def _api(server: OllamaServer, path: str, body: dict | None = None, timeout: float = 1800) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _cdn_bytes_sent(registry: Registry, blob_digest: str, since: int, requests: int) -> tuple[int, int]:
    """Bytes the registry's CDN sent for this blob since the log offset `since`, and in how many
    responses. nginx logs a response once it is sent, which may be a moment after the client read it:
    wait (5 s at most) until `requests` responses are there."""
    log = registry.workdir / "cdn" / "access.log"
    hexdigest = blob_digest.split(":", 1)[1]
    deadline = time.monotonic() + 5
    while True:
        with open(log, "rb") as handle:
            handle.seek(since)
            lines = [line for line in handle.read().decode(errors="replace").splitlines() if hexdigest in line]
        # the combined format: ... "GET /path HTTP/1.1" status bytes "referer" "agent"
        sent = [int(m.group(1)) for m in (re.search(r'" \d{3} (\d+) "', line) for line in lines) if m]
        if len(sent) >= requests or time.monotonic() > deadline:
            return sum(sent), len(sent)
        time.sleep(0.05)






def _error_pct(predicted: int, measured: int) -> float:
    return round(100.0 * (predicted - measured) / measured, 2)


def run() -> dict[str, float]:
    started = len(process.STARTED)
    with tempfile.TemporaryDirectory(prefix="bench_model_info_") as tmp:
        work = Path(tmp)
        env = module_env(work)
        with Registry.start(work / "registry") as registry, \
                OllamaServer.start(work / "ollama", env={"OLLAMA_NUM_PARALLEL": "1"}) as server:
            gguf_path = work / "q4km.gguf"
            write_seconds = make_quantised_model(gguf_path, seed=SIZE_MB, size_mb=SIZE_MB)
            model = registry.push_model(gguf_path, name="bench/info-q4km", tag="latest")
            gguf_path.unlink()  # the registry holds its own copy

            # what the module reads from the registry, and what its CDN sent
            cdn_log = registry.workdir / "cdn" / "access.log"
            since = cdn_log.stat().st_size if cdn_log.exists() else 0
            _, _, info = run_module("ollama_model_info", {"name": model.ref, "insecure": True, "num_ctx": NUM_CTX},
                                    work, env)
            if info.get("failed"):
                raise RuntimeError(f"ollama_model_info failed: {info.get('msg')}")
            wire_bytes, responses = _cdn_bytes_sent(registry, info["model_digest"], since, len(info["ranges_read"]))

            # the same model pulled and loaded by Ollama, a prompt longer than the context processed
            server.cli("pull", "--insecure", model.ref, timeout=1800)
            prompt = " ".join(["the model is ready hello world ollama ok"] * (NUM_CTX // 4))
            done = _api(server, "/api/generate", {"model": model.ref, "prompt": prompt, "stream": False,
                                                  "options": {"num_ctx": NUM_CTX, "num_predict": 1,
                                                              "temperature": 0}})
            if done.get("prompt_eval_count", 0) < 0.9 * NUM_CTX:
                raise RuntimeError(f"the prompt did not fill the context of {NUM_CTX}: {done}")
            try:
                loaded = {m["name"]: m for m in _api(server, "/api/ps")["models"]}[model.ref]
                runner, serve = server.runner_memory(info["model_digest"])
            finally:
                _api(server, "/api/generate", {"model": model.ref, "keep_alive": 0})
    stopped_since(started)

    memory = info["memory"]
    measured_total = runner["VmHWM"] + serve["VmRSS"]
    ps_error = _error_pct(memory["ollama_ps_bytes"], loaded["size"])
    total_error = _error_pct(memory["total_bytes"], measured_total)
    return {
        "model_info_blob_mb": round(info["blob_size"] / 2**20, 1),
        "model_info_write_seconds": round(write_seconds, 1),
        "model_info_bytes_read": info["bytes_read"],
        "model_info_header_bytes": info["header_bytes"],
        "model_info_cdn_bytes_sent": wire_bytes,
        "model_info_cdn_responses": responses,
        "model_info_read_ratio": info["bytes_read"] / info["blob_size"],
        "sizing_num_ctx": NUM_CTX,
        "sizing_ps_predicted_mb": round(memory["ollama_ps_bytes"] / 2**20, 1),
        "sizing_ps_measured_mb": round(loaded["size"] / 2**20, 1),
        "sizing_ps_error_pct": ps_error,
        "sizing_total_predicted_mb": round(memory["total_bytes"] / 2**20, 1),
        "sizing_total_measured_mb": round(measured_total / 2**20, 1),
        "sizing_total_error_pct": total_error,
        # the worse of the two, by magnitude
        "sizing_error_pct": max(abs(ps_error), abs(total_error)),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}={value}")
