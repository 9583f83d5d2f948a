"""What the ollama_service molecule scenario installs from, on loopback: two Ollama release archives and
a registry holding the tiny model.

The archives are laid out as Ollama publishes its Linux release (`bin/ollama`, `lib/ollama/`): the
first from the Ollama `make setup` built (OLLAMA_BIN), the second from the same source linked under
another version string (tools/setup.sh, OLLAMA_REBUILD_VERSION), which `ollama --version` and
/api/version report, so an upgrade and a rollback are visible in ollama_health's version. The first is
handed to the role as a file on the controller, the second by URL from an nginx on loopback; both are
built once per binary into the cache.

    python -m tests.services.service_release run -- molecule test -s service

exports OLLAMA_SERVICE_TEST_* (see `environment()`) to the command and stops everything afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .models import make_gguf
from .nginx import nginx
from .ollama import ollama_bin
from .process import free_port
from .registry import Registry


def cache_dir() -> Path:
    root = os.environ.get("AIPLATFORM_OLLAMA_CACHE") or str(Path.home() / ".cache" / "aiplatform-ollama")
    return Path(root) / "service-archives"


def rebuild_bin() -> tuple[str, str]:
    """(version, binary) of the second build tools/setup.sh links."""
    version = os.environ.get("OLLAMA_REBUILD_VERSION") or f"{os.environ.get('OLLAMA_VERSION', '0.18.3')}-rebuild"
    binary = cache_dir().parent / "ollama-versions" / version / "ollama"
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"{binary} is missing: run `make setup` (tools/setup.sh links it)")
    return version, str(binary)


def reported_version(binary: str) -> str:
    """The version the binary reports, as `ollama --version` prints it with no server to ask."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "OLLAMA_HOST": "127.0.0.1:9"})
    for line in (out.stdout + out.stderr).splitlines():
        if "client version is " in line:
            return line.rsplit(" ", 1)[-1].strip()
    raise RuntimeError(f"{binary} --version printed no version: {out.stdout} {out.stderr}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def release_archive(binary: str, version: str) -> Path:
    """The binary packaged as Ollama's Linux release archive, cached by version and content."""
    key = sha256_file(Path(binary))[:16]
    path = cache_dir() / f"ollama-{version}-{key}-linux-amd64.tgz"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")

    def entry(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime = kind, mode, size, 0
        return info

    with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
        tar.addfile(entry("bin", tarfile.DIRTYPE, 0o755))
        with open(binary, "rb") as handle:
            tar.addfile(entry("bin/ollama", tarfile.REGTYPE, 0o755, os.path.getsize(binary)), handle)
        # the release's CPU backends live here; this build links them into bin/ollama (cgo), so the
        # directory carries only a note, as the layout must still have it
        tar.addfile(entry("lib", tarfile.DIRTYPE, 0o755))
        tar.addfile(entry("lib/ollama", tarfile.DIRTYPE, 0o755))
        note = b"CPU backends are linked into bin/ollama in this build\n"
        tar.addfile(entry("lib/ollama/README", tarfile.REGTYPE, 0o644, len(note)), io.BytesIO(note))
    partial.rename(path)
    return path


@contextlib.contextmanager
def started(workdir: Path):
    """The registry with the tiny model, the two archives and the nginx serving the second."""
    first_bin = ollama_bin()
    first_version = reported_version(first_bin)
    second_version, second_bin = rebuild_bin()
    if reported_version(second_bin) != second_version:
        raise RuntimeError(f"{second_bin} does not report {second_version}: run `make setup` again")
    first = release_archive(first_bin, first_version)
    second = release_archive(second_bin, second_version)
    served = workdir / "releases"
    served.mkdir(parents=True)
    (served / second.name).symlink_to(second)
    port = free_port()
    with Registry.start(workdir / "registry") as registry, \
            nginx("nginx-releases", workdir / "nginx", f"    listen 127.0.0.1:{port};\n    root {served};",
                  ready_url=f"http://127.0.0.1:{port}/"):
        model = registry.push_model(make_gguf(workdir / "tiny.gguf", seed=0), name="library/tiny", tag="latest")
        yield {
            "OLLAMA_SERVICE_TEST_MODEL": model.ref,
            "OLLAMA_SERVICE_TEST_MODEL_BYTES": str(model.size),
            "OLLAMA_SERVICE_TEST_VERSION": first_version,
            "OLLAMA_SERVICE_TEST_ARCHIVE": str(first),
            "OLLAMA_SERVICE_TEST_ARCHIVE_SHA256": sha256_file(first),
            "OLLAMA_SERVICE_TEST_UPGRADE_VERSION": second_version,
            "OLLAMA_SERVICE_TEST_UPGRADE_URL": f"http://127.0.0.1:{port}/{second.name}",
            "OLLAMA_SERVICE_TEST_UPGRADE_SHA256": sha256_file(second),
            "OLLAMA_SERVICE_TEST_PORT": str(free_port()),
        }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run a command with the archives, registry and model")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a COMMAND to run is required")
    with tempfile.TemporaryDirectory(prefix="ollama-service-") as tmp, started(Path(tmp)) as env:
        print("==> " + " ".join(f"{k}={v}" for k, v in env.items()), flush=True)
        return subprocess.call(command, env={**os.environ, **env})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
