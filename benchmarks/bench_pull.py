"""Pull throughput of aiplatform.ollama.ollama_model against the `ollama pull` CLI, and the module's peak RSS.

Both pull the same model (1 GiB) from the same local registry (with its CDN redirect) into the same
real Ollama server, alternating, several times in the same run; the ratio of median throughputs is the
figure. The module runs as Ansible runs it (its own Python process reading an args file), so its peak
RSS is that of a real task; it must not grow with the model, because the pull stream is read line by line.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks.measure import cli_pull, delete_model, make_model, module_env, run_module
from tests.services.ollama import OllamaServer
from tests.services.registry import Registry

ROUNDS = 5
THROUGHPUT_MB = 1024
RSS_SIZES_MB = (256, 1024)


def _module_pull(server: OllamaServer, ref: str, workdir: Path, env: dict) -> tuple[float, int, float]:
    seconds, rss_kib, result = run_module("ollama_model", {"name": ref, "host": server.url, "insecure": True},
                                          workdir, env)
    if result.get("failed") or not result.get("changed"):
        raise RuntimeError(f"module pull of {ref} did not pull: {result}")
    return seconds, rss_kib, result["seconds"]


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench_pull_") as tmp:
        work = Path(tmp)
        env = module_env(work)
        with Registry.start(work / "registry") as registry, OllamaServer.start(work / "ollama") as server:
            models = {}
            for size in sorted(set(RSS_SIZES_MB) | {THROUGHPUT_MB}):
                gguf = make_model(work / f"bench-{size}.gguf", seed=size, size_mb=size)
                models[size] = registry.push_model(gguf, name=f"bench/pull-{size}", tag="latest")
                gguf.unlink()  # the registry holds its own copy

            model = models[THROUGHPUT_MB]
            cli_times, module_times, stream_times, rss = [], [], [], {}
            for round_index in range(ROUNDS):
                # alternate who goes first so neither always meets a warmer page cache
                order = ("cli", "module") if round_index % 2 == 0 else ("module", "cli")
                for who in order:
                    delete_model(server, model.ref)
                    if who == "cli":
                        cli_times.append(cli_pull(server, model.ref))
                    else:
                        seconds, rss_kib, stream_seconds = _module_pull(server, model.ref, work, env)
                        module_times.append(seconds)
                        stream_times.append(stream_seconds)
                        rss[THROUGHPUT_MB] = max(rss.get(THROUGHPUT_MB, 0), rss_kib)
            for size in RSS_SIZES_MB:
                if size not in rss:
                    delete_model(server, models[size].ref)
                    rss[size] = _module_pull(server, models[size].ref, work, env)[1]

            cli_rate = model.size / statistics.median(cli_times) / 1e6
            module_rate = model.size / statistics.median(module_times) / 1e6
            figures = {
                "cli_pull_mb_per_s": round(cli_rate, 1),
                "module_pull_mb_per_s": round(module_rate, 1),
                "module_vs_cli_pull": round(module_rate / cli_rate, 3),
                # the module's own pull time, without Python start-up: where a gap would come from
                "module_pull_stream_seconds": round(statistics.median(stream_times), 2),
                "cli_pull_seconds": round(statistics.median(cli_times), 2),
                "module_pull_seconds": round(statistics.median(module_times), 2),
            }
            for size in RSS_SIZES_MB:
                figures[f"module_peak_rss_mb_{size}"] = round(rss[size] / 1024, 1)
            small, large = RSS_SIZES_MB[0], RSS_SIZES_MB[-1]
            figures[f"module_peak_rss_ratio_{large}_vs_{small}"] = round(rss[large] / rss[small], 3)
            return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}={value}")
