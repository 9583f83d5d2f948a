"""What the benchmarks share: models made in a child process, the work tree as a collection, and
running a child process while sampling its peak RSS."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from tests.services import process  # noqa: E402
from tests.services.ollama import OllamaServer  # noqa: E402


def make_model(path: Path, seed: int, size_mb: int) -> Path:
    # in a child process, so the benchmark itself never holds the weights in memory
    code = (
        f"from pathlib import Path; from tests.services.models import make_gguf; "
        f"make_gguf(Path({str(path)!r}), seed={seed}, size_mb={size_mb})"
    )
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True)
    return path


def collection_path(base: Path) -> Path:
    link = base / "ansible_collections" / "aiplatform" / "ollama"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(PROJECT_ROOT, target_is_directory=True)
    return base


_IMPORT_ROOT: list[str] = []


def import_work_tree() -> None:
    """Make `ansible_collections.aiplatform.ollama` importable in this process as the work tree, for a
    benchmark that calls module_utils directly. Once per process; the link goes when the process exits."""
    if not _IMPORT_ROOT:
        root = tempfile.mkdtemp(prefix="aiplatform-ollama-bench-import-")
        atexit.register(shutil.rmtree, root, True)
        _IMPORT_ROOT.append(str(collection_path(Path(root))))
        sys.path.insert(0, _IMPORT_ROOT[0])


def stopped_since(count: int) -> None:
    """Raise if a service process started after the first `count` ones (tests.services.process.STARTED)
    still runs, or a child of it: a benchmark must stop everything it starts."""
    survivors = [p for p in process.STARTED[count:] if p.group_alive()]
    for proc in survivors:
        proc.stop()
    if survivors:
        raise RuntimeError(f"processes left running (now stopped): {', '.join(p.name for p in survivors)}")


def delete_model(server: OllamaServer, ref: str) -> None:
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


def hwm_kib(pid: int) -> int:
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


def run_measured(argv: list[str], env: dict) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB and output of one child process."""
    peak = 0
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            peak = max(peak, hwm_kib(proc.pid))
            time.sleep(0.02)
        seconds = time.monotonic() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {proc.returncode}: {text[-2000:]}")
    return seconds, peak, text


def module_env(work: Path) -> dict:
    """An environment in which `python -m ansible_collections.aiplatform.ollama...` runs the work tree."""
    paths = [str(collection_path(work / "collections")), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def run_module(module: str, args: dict, workdir: Path, env: dict) -> tuple[float, int, dict]:
    """Run a module as Ansible does (its own Python reading an args file): seconds, peak RSS KiB, result."""
    args_file = workdir / f"{module}-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    seconds, rss_kib, out = run_measured(
        [sys.executable, "-m", f"ansible_collections.aiplatform.ollama.plugins.modules.{module}", str(args_file)], env
    )
    return seconds, rss_kib, json.loads(out.strip().splitlines()[-1])


def cli_pull(server: OllamaServer, ref: str) -> float:
    """Seconds `ollama pull --insecure ref` takes against server."""
    seconds, _, _ = run_measured([server.binary, "pull", "--insecure", ref], {**os.environ, **server.env})
    return seconds


@contextlib.contextmanager
def real_node_session(work: Path):
    """The test cluster with its real node and a registry on the node's address, as the real-node tests
    have them, and the work tree as a collection: (cluster, registry, collections)."""
    from tests.services.cluster import Cluster
    from tests.services.real_node import NODE_IP, SERVICES_IP
    from tests.services.registry import Registry

    collections = collection_path(work / "collections")
    with Cluster.start(work / "cluster", with_real_node=True) as cluster, \
            Registry.start(work / "registry", host=NODE_IP, cdn_host=SERVICES_IP) as registry:
        yield cluster, registry, collections


def real_node_env(cluster, model_ref: str) -> dict:
    """The environment tests/integration/real_node/inventory reads: the cluster, the model, the images."""
    return {**cluster.env(), "AIPLATFORM_TEST_NODE_MODEL": model_ref,
            "AIPLATFORM_TEST_OLLAMA_IMAGE": cluster.node.images["ollama"],
            "AIPLATFORM_TEST_TOOLS_IMAGE": cluster.node.images["tools"]}
