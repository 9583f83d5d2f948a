"""Seeding a store directory with aiplatform.ollama.ollama_store_model against `ollama pull`, and its peak RSS.

The pre-seed stage writes a model into an Ollama store straight from the registry, with no server.
Both fetch the same model (1 GiB) from the same local registry (blob downloads redirected to its CDN),
alternating, several times in the same run; the ratio of median throughputs is the figure. The module
verifies every blob's sha256 while streaming it to disk, so its peak RSS must not grow with the model.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks.measure import cli_pull, delete_model, make_model, module_env, run_module
from tests.services.ollama import OllamaServer
from tests.services.registry import Registry

ROUNDS = 5
THROUGHPUT_MB = 1024
RSS_SIZES_MB = (256, 1024)


def _seed(ref: str, store: Path, workdir: Path, env: dict) -> tuple[float, int]:
    shutil.rmtree(store, ignore_errors=True)
    seconds, rss_kib, result = run_module("ollama_store_model", {"name": ref, "path": str(store), "insecure": True},
                                          workdir, env)
    if result.get("failed") or not result.get("changed"):
        raise RuntimeError(f"seeding {ref} did not download it: {result}")
    return seconds, rss_kib


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench_seed_") as tmp:
        work = Path(tmp)
        env = module_env(work)
        store = work / "store"
        with Registry.start(work / "registry") as registry, OllamaServer.start(work / "ollama") as server:
            models = {}
            for size in sorted(set(RSS_SIZES_MB) | {THROUGHPUT_MB}):
                gguf = make_model(work / f"seed-{size}.gguf", seed=1000 + size, size_mb=size)
                models[size] = registry.push_model(gguf, name=f"bench/seed-{size}", tag="latest")
                gguf.unlink()  # the registry holds its own copy

            model = models[THROUGHPUT_MB]
            cli_times, seed_times, rss = [], [], {}
            for round_index in range(ROUNDS):
                # alternate who goes first so neither always meets a warmer page cache
                order = ("cli", "seed") if round_index % 2 == 0 else ("seed", "cli")
                for who in order:
                    if who == "cli":
                        delete_model(server, model.ref)
                        cli_times.append(cli_pull(server, model.ref))
                    else:
                        seconds, rss_kib = _seed(model.ref, store, work, env)
                        seed_times.append(seconds)
                        rss[THROUGHPUT_MB] = max(rss.get(THROUGHPUT_MB, 0), rss_kib)
            for size in RSS_SIZES_MB:
                if size not in rss:
                    rss[size] = _seed(models[size].ref, store, work, env)[1]

            cli_rate = model.size / statistics.median(cli_times) / 1e6
            seed_rate = model.size / statistics.median(seed_times) / 1e6
            small, large = RSS_SIZES_MB[0], RSS_SIZES_MB[-1]
            figures = {
                "store_seed_mb_per_s": round(seed_rate, 1),
                "store_seed_cli_pull_mb_per_s": round(cli_rate, 1),
                "store_seed_vs_cli_pull": round(seed_rate / cli_rate, 3),
            }
            for size in RSS_SIZES_MB:
                figures[f"store_seed_peak_rss_mb_{size}"] = round(rss[size] / 1024, 1)
            figures[f"store_seed_peak_rss_ratio_{large}_vs_{small}"] = round(rss[large] / rss[small], 3)
            return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}={value}")
