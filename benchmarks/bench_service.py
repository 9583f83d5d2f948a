"""Ollama as a systemd service (roles/ollama_service): exposure score, start to ready against a bare start, reruns.

On a real systemd host in podman: the unit's exposure score, its start to ready on the seeded store
against the same binary started bare, and a second run's changes.

The host is molecule's Debian bookworm systemd image (tools/podman_image.sh) in the machine's network
namespace, used on loopback only; tests/services/service_release.py serves the release archive and
the registry with the tiny model. playbooks/service.yml's role installs the release, seeds the model
and its served model (<model>-t1 for one CPU), writes the unit and verifies inference.

service_exposure_score
    `systemd-analyze security` (systemd 252) of the unit the role writes: 0 is fully sandboxed, 10
    fully exposed; the role's goal is at most 2.0.
service_start_to_ready_s
    `systemctl start` of the stopped unit until /api/tags lists the served model (the seeded store,
    nothing pulled), median of ROUNDS.
bare_start_to_ready_s
    The same binary on the same store and environment, started by hand in the same container as root
    without any sandbox, median of ROUNDS: the baseline.
service_start_vs_bare
    The ratio: what the unit (user, sandbox, cgroup limits) adds to the start.
service_first_run_s, service_second_run_changed
    The role's first run (install, seed, start, verify) and the tasks a second run changes (0).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.measure import PROJECT_ROOT, collection_path, import_work_tree, stopped_since
from tests.services import process
from tests.services.service_release import started

ROUNDS = 5
READY_TIMEOUT = 60

PLAYBOOK = """\
- name: Run Ollama as a systemd service
  hosts: all
  gather_facts: false
  roles:
    - role: aiplatform.ollama.ollama_service
"""


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=300)


def wait_served(url: str, model: str) -> float:
    """Seconds until the server at url lists model."""
    started_at = time.monotonic()
    while time.monotonic() - started_at < READY_TIMEOUT:
        try:
            with urllib.request.urlopen(url + "/api/tags", timeout=2) as resp:
                if model in [m["name"] for m in json.load(resp).get("models", [])]:
                    return time.monotonic() - started_at
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not list {model} within {READY_TIMEOUT} s")


def playbook(work: Path, inventory: Path, variables: dict, collections: Path) -> tuple[float, int]:
    """Seconds and changed tasks of one run of the role."""
    (work / "vars.json").write_text(json.dumps(variables))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_FORCE_COLOR": "0"}
    began = time.monotonic()
    out = subprocess.run(["ansible-playbook", "-i", str(inventory), "-e", f"@{work / 'vars.json'}",
                          str(work / "service.yml")], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                         timeout=1800)
    seconds = time.monotonic() - began
    if out.returncode != 0:
        raise RuntimeError(f"the role failed: {out.stdout[-3000:]}{out.stderr[-1000:]}")
    changed = re.search(r"changed=(\d+)", out.stdout.split("PLAY RECAP")[-1])
    return seconds, int(changed.group(1))


def run() -> dict:
    import_work_tree()
    from ansible_collections.aiplatform.ollama.plugins.module_utils.systemd_security import exposure

    already = len(process.STARTED)
    image = os.environ.get("MOLECULE_IMAGE", "localhost/debian-systemd:bookworm")
    name = f"aiplatform-bench-service-{os.getpid()}"
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp, started(Path(tmp) / "services") as env:
        work = Path(tmp)
        podman("run", "-d", "--name", name, "--network", "host", "--systemd", "always", image, "/sbin/init")
        try:
            for _ in range(100):
                state = podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    break
                time.sleep(0.1)
            # images from earlier tools/podman_image.sh have a 0700 root directory (see molecule/service)
            podman("exec", name, "chmod", "0755", "/")
            inventory = work / "hosts.yml"
            inventory.write_text(json.dumps({"all": {"hosts": {name: {
                "ansible_connection": "containers.podman.podman", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
            (work / "service.yml").write_text(PLAYBOOK)
            port = env["OLLAMA_SERVICE_TEST_PORT"]
            served = env["OLLAMA_SERVICE_TEST_MODEL"] + "-t1"
            variables = {
                "ollama_service_version": env["OLLAMA_SERVICE_TEST_VERSION"],
                "ollama_service_archive_src": env["OLLAMA_SERVICE_TEST_ARCHIVE"],
                "ollama_service_archive_checksum": "sha256:" + env["OLLAMA_SERVICE_TEST_ARCHIVE_SHA256"],
                "ollama_service_host": f"127.0.0.1:{port}",
                "ollama_service_models": [env["OLLAMA_SERVICE_TEST_MODEL"]],
                "ollama_service_insecure": True,
                "ollama_service_cpus": "1",
                "ollama_service_progress_interval": 0,
            }
            collections = collection_path(work / "collections")
            figures["service_first_run_s"], _ = playbook(work, inventory, variables, collections)
            _, figures["service_second_run_changed"] = playbook(work, inventory, variables, collections)
            analyzed = podman("exec", name, "systemd-analyze", "security", "--no-pager", "ollama.service").stdout
            figures["service_exposure_score"] = exposure(analyzed)["score"]

            url = f"http://127.0.0.1:{port}"
            unit_env = podman("exec", name, "systemctl", "show", "--property=Environment", "--value",
                              "ollama.service").stdout.split()
            bare_port = process.free_port()
            bare_env = [e.replace(f"OLLAMA_HOST=127.0.0.1:{port}", f"OLLAMA_HOST=127.0.0.1:{bare_port}")
                        for e in unit_env if not e.startswith("HOME=")] + ["HOME=/root"]
            service, bare = [], []
            for _ in range(ROUNDS):
                podman("exec", name, "systemctl", "stop", "ollama.service")
                began = time.monotonic()
                podman("exec", name, "systemctl", "start", "ollama.service")
                service.append(time.monotonic() - began + wait_served(url, served))
                podman("exec", name, "systemctl", "stop", "ollama.service")

                began = time.monotonic()
                serve = f"env {' '.join(bare_env)} /opt/ollama/current/bin/ollama serve >/tmp/bare.log 2>&1 & echo $!"
                pid = podman("exec", name, "sh", "-c", serve).stdout.strip()
                bare.append(time.monotonic() - began + wait_served(f"http://127.0.0.1:{bare_port}", served))
                podman("exec", name, "kill", pid)
                podman("exec", name, "sh", "-c", f"while kill -0 {pid} 2>/dev/null; do sleep 0.05; done")
            figures["service_start_to_ready_s"] = statistics.median(service)
            figures["bare_start_to_ready_s"] = statistics.median(bare)
            figures["service_start_vs_bare"] = figures["service_start_to_ready_s"] / figures["bare_start_to_ready_s"]
        finally:
            podman("rm", "-f", "-t", "0", name, check=False)
    stopped_since(already)
    return figures
