"""Pull throughput of aiplatform.ollama.ollama_model against the `ollama pull` CLI, and the module's peak RSS.

Both pull the same model (1 GiB) from the same local registry (with its CDN redirect) into the same
real Ollama server, alternating, several times in the same run; the ratio of median throughputs is the
figure. The module runs as Ansible runs it (its own Python process reading an args file), so its peak
RSS is that of a real task; it must not grow with the model, because the pull stream is read line by line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from tests.services.ollama import OllamaServer  # noqa: E402
from tests.services.registry import Registry  # noqa: E402

ROUNDS = 5
THROUGHPUT_MB = 1024
RSS_SIZES_MB = (256, 1024)


def _make_model(path: Path, seed: int, size_mb: int) -> Path:
    # in a child process, so the benchmark itself never holds the weights in memory
    code = (
        f"from pathlib import Path; from tests.services.models import make_gguf; "
        f"make_gguf(Path({str(path)!r}), seed={seed}, size_mb={size_mb})"
    )
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True)
    return path


def _collection_path(base: Path) -> Path:
    link = base / "ansible_collections" / "aiplatform" / "ollama"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(PROJECT_ROOT, target_is_directory=True)
    return base


def _delete(server: OllamaServer, ref: str) -> None:
    req = urllib.request.Request(
        server.url + "/api/delete",
        data=json.dumps({"model": ref}).encode(),
        method="DELETE",
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(req, timeout=60).close()
    except urllib.error.HTTPError as err:
        if err.code != 404:
            raise


def _hwm_kib(pid: int) -> int:
    """Peak RSS of the process image now in pid (VmHWM restarts at exec, unlike a child's ru_maxrss,
    which would still count the memory of the benchmark process it was forked from)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _run_measured(argv: list[str], env: dict) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB and output of one child process."""
    peak = 0
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            peak = max(peak, _hwm_kib(proc.pid))
            time.sleep(0.02)
        seconds = time.monotonic() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {proc.returncode}: {text[-2000:]}")
    return seconds, peak, text


def _module_pull(server: OllamaServer, ref: str, workdir: Path, env: dict) -> tuple[float, int, float]:
    args = workdir / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"name": ref, "host": server.url, "insecure": True}}))
    seconds, rss_kib, out = _run_measured(
        [sys.executable, "-m", "ansible_collections.aiplatform.ollama.plugins.modules.ollama_model", str(args)], env
    )
    result = json.loads(out.strip().splitlines()[-1])
    if result.get("failed") or not result.get("changed"):
        raise RuntimeError(f"module pull of {ref} did not pull: {result}")
    return seconds, rss_kib, result["seconds"]


def _cli_pull(server: OllamaServer, ref: str) -> float:
    seconds, _, _ = _run_measured([server.binary, "pull", "--insecure", ref], {**os.environ, **server.env})
    return seconds


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench_pull_") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(_collection_path(work / "collections")), os.environ.get("PYTHONPATH", "")]
            ),
        }
        with Registry.start(work / "registry") as registry, OllamaServer.start(work / "ollama") as server:
            models = {}
            for size in sorted(set(RSS_SIZES_MB) | {THROUGHPUT_MB}):
                gguf = _make_model(work / f"bench-{size}.gguf", seed=size, size_mb=size)
                models[size] = registry.push_model(gguf, name=f"bench/pull-{size}", tag="latest")
                gguf.unlink()  # the registry holds its own copy

            model = models[THROUGHPUT_MB]
            cli_times, module_times, stream_times, rss = [], [], [], {}
            for round_index in range(ROUNDS):
                # alternate who goes first so neither always meets a warmer page cache
                order = ("cli", "module") if round_index % 2 == 0 else ("module", "cli")
                for who in order:
                    _delete(server, model.ref)
                    if who == "cli":
                        cli_times.append(_cli_pull(server, model.ref))
                    else:
                        seconds, rss_kib, stream_seconds = _module_pull(server, model.ref, work, env)
                        module_times.append(seconds)
                        stream_times.append(stream_seconds)
                        rss[THROUGHPUT_MB] = max(rss.get(THROUGHPUT_MB, 0), rss_kib)
            for size in RSS_SIZES_MB:
                if size not in rss:
                    _delete(server, models[size].ref)
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
