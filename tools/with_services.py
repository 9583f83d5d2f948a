"""Run a command next to a real local registry and Ollama server, then stop them.

The tiny test model is published to the registry first. The command sees
OLLAMA_URL (the server), OLLAMA_REGISTRY (host:port) and OLLAMA_DEMO_MODEL (the model reference).
With --models-dir DIR the server serves the store in DIR, which the command may seed while the
server runs (OLLAMA_NOPRUNE keeps a restart from pruning a half-seeded store).
Used by `make demo` so the main job runs end to end on a machine with no cluster and no internet.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.services.models import make_gguf  # noqa: E402
from tests.services.ollama import OllamaServer  # noqa: E402
from tests.services.registry import Registry  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, help="the Ollama server's model store (default: a temp dir)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("a COMMAND to run is required")
    if args.models_dir:
        args.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ollama-demo-") as tmp:
        work = Path(tmp)
        with Registry.start(work / "registry") as registry, \
                OllamaServer.start(work / "ollama", {"OLLAMA_NOPRUNE": "1"}, args.models_dir) as ollama:
            model = registry.push_model(make_gguf(work / "tiny.gguf", seed=0), name="library/tiny", tag="latest")
            env = {**os.environ, "OLLAMA_URL": ollama.url, "OLLAMA_REGISTRY": registry.host,
                   "OLLAMA_DEMO_MODEL": model.ref}
            print(f"==> local Ollama {ollama.url}, registry {registry.host}, model {model.ref}", flush=True)
            return subprocess.call(args.command, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
