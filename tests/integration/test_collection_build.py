"""The collection builds and installs from its tarball into an empty path, plugins and roles included."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv: str, env: dict | None = None) -> str:
    done = subprocess.run(argv, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_build_install_and_list_plugins(tmp_path):
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    _run("ansible-galaxy", "collection", "build", "--force", "--output-path", str(tmp_path / "dist"))
    tarball = tmp_path / "dist" / f"aiplatform-ollama-{version}.tar.gz"
    assert tarball.is_file()
    with tarfile.open(tarball) as tar:
        members = tar.getnames()
    assert not [m for m in members if m.startswith((".venv", "build/", ".collections", "tests/output"))]

    collections = tmp_path / "collections"
    # only the empty path is configured, so the copy installed for development cannot stand in
    env = {"ANSIBLE_COLLECTIONS_PATH": str(collections)}
    _run("ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", str(collections), str(tarball),
         env=env)
    listed = _run("ansible-doc", "-l", "aiplatform.ollama", env=env)
    modules = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert modules, "the collection has no modules"
    for module in modules:
        assert f"aiplatform.ollama.{module}" in listed
    roles = _run("ansible-doc", "-t", "role", "-l", "aiplatform.ollama", env=env)
    for role in sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()):
        assert f"aiplatform.ollama.{role}" in roles
