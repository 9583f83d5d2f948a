"""A real Ollama server (0.18.3, built from its Go module by `make setup`; OLLAMA_BIN overrides)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

from .process import Service, free_port


def ollama_bin() -> str:
    path = os.environ.get("OLLAMA_BIN", "")
    if not path or not os.access(path, os.X_OK):
        raise FileNotFoundError(
            f"OLLAMA_BIN={path!r} is not an executable Ollama binary; run `make setup` "
            "(builds Ollama 0.18.3 into the project cache) or point OLLAMA_BIN at an installed ollama")
    return path


class OllamaServer(Service):
    """`ollama serve` on a free port of 127.0.0.1 with its model store in workdir/models (or models_dir).
    Use `OllamaServer.start(workdir, env, models_dir)` as a context manager."""

    def __init__(self, workdir: Path, env: dict | None = None, models_dir: Path | None = None):
        super().__init__()
        self.workdir = Path(workdir)
        self.models_dir = Path(models_dir) if models_dir else self.workdir / "models"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.binary = ollama_bin()
        self.env = {
            "OLLAMA_HOST": self.host,
            "OLLAMA_MODELS": str(self.models_dir),
            "HOME": str(self.workdir),  # its key pair and history stay in the test's directory
            "OLLAMA_KEEP_ALIVE": "5m",
            **(env or {}),
        }

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self._spawn("ollama", [self.binary, "serve"], env=self.env).wait_http(self.url + "/api/version", timeout=60)

    def runner_memory(self, blob_digest: str) -> tuple[dict, dict]:
        """/proc status (VmRSS, VmHWM in bytes, PPid) of the runner serving this blob from this server's
        store, and of the server that started it: what a loaded model really costs in memory."""
        blob = str(self.models_dir / "blobs" / blob_digest.replace(":", "-"))
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"runner" in argv and blob.encode() in argv:
                runner = _proc_status(pid)
                return runner, _proc_status(runner["PPid"])
        raise RuntimeError(f"no runner process for {blob}")

    def log_tail(self, lines: int = 60) -> str:
        return self.processes[0].log_tail(lines) if self.processes else ""

    def derive(self, name: str, base: str, **parameters) -> str:
        """`ollama create name` FROM base with PARAMETER lines, as the seed Job does."""
        modelfile = self.workdir / f"Modelfile.{len(list(self.workdir.glob('Modelfile.*')))}"
        modelfile.write_text(f"FROM {base}\n" + "".join(f"PARAMETER {k} {v}\n" for k, v in parameters.items()))
        self.cli("create", name, "-f", str(modelfile))
        return name

    def generate(self, model: str, timeout: float = 300) -> dict:
        """A short, deterministic /api/generate of model (8 tokens, seed 1, temperature 0): its response."""
        body = {"model": model, "prompt": "hello", "stream": False,
                "options": {"num_predict": 8, "seed": 1, "temperature": 0}}
        request = urllib.request.Request(self.url + "/api/generate", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def cli(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run the ollama CLI against this server."""
        return subprocess.run([self.binary, *args], env={**os.environ, **self.env}, check=check,
                              capture_output=True, text=True, timeout=timeout)


def _proc_status(pid: str) -> dict:
    """Resident memory now (VmRSS) and at its peak (VmHWM) in bytes, and the parent's pid."""
    text = Path(f"/proc/{pid}/status").read_text()
    found = dict(re.findall(r"^(VmRSS|VmHWM|PPid):\s+(\d+)", text, re.M))
    return {"VmRSS": int(found["VmRSS"]) * 1024, "VmHWM": int(found["VmHWM"]) * 1024, "PPid": found["PPid"]}
