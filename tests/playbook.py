"""Run ansible-playbook on the work tree as aiplatform.ollama and read its recap.

The work tree is linked as ansible_collections/aiplatform/ollama in a temporary directory, so a
test never runs a stale installed copy; kubernetes.core and friends come from the venv's `ansible`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RECAP = re.compile(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def link_work_tree(base: Path) -> Path:
    """base/ansible_collections/aiplatform/ollama -> the work tree; returns base."""
    link = base / "ansible_collections" / "aiplatform" / "ollama"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(PROJECT_ROOT, target_is_directory=True)
    return base


@dataclass
class PlaybookRun:
    returncode: int
    output: str

    @property
    def said(self) -> str:
        """The output on one line, the callback's wrapping of long messages undone."""
        return " ".join(self.output.split())

    @property
    def recap(self) -> dict:
        match = RECAP.search(self.output)
        assert match, f"no PLAY RECAP in the output:\n{self.output[-3000:]}"
        return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def run_playbook(collections: Path, playbook: str, inventory: str, extra_vars: dict | None = None,
                 *args: str, env: dict | None = None, timeout: float = 600,
                 launcher: list[str] | None = None) -> PlaybookRun:
    """ansible-playbook -i inventories/<inventory> playbooks/<playbook> -e <extra_vars as JSON> ARGS,
    started through launcher (a command prefix, e.g. one entering a pod's network) when given."""
    argv = [*(launcher or []), str(Path(sys.executable).with_name("ansible-playbook")),
            "-i", str(PROJECT_ROOT / "inventories" / inventory),
            str(PROJECT_ROOT / "playbooks" / playbook),
            "-e", json.dumps(extra_vars or {}), *args]
    full_env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0", **(env or {})}
    proc = subprocess.run(argv, cwd=PROJECT_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr)


ROLE_OBJECTS_PLAYBOOK = """
- name: Compute the objects {role} would apply, without a cluster
  hosts: k8s_controller
  gather_facts: false
  tasks:
    - name: Validate the inputs, as the role does first
      ansible.builtin.include_role:
        name: aiplatform.ollama.{role}
        tasks_from: validate.yml
        public: true
    - name: Load the object definitions
      ansible.builtin.include_vars:
        file: {objects}
    - name: Write them out
      ansible.builtin.copy:
        content: "{{{{ ({expression}) | to_json }}}}"
        dest: {dest}
        mode: "0644"
"""


def role_objects(collections: Path, role: str, inventory: str, expression: str, workdir: Path,
                 extra_vars: dict | None = None, env: dict | None = None):
    """The value of expression once role has validated its inputs and loaded vars/objects.yml: the
    objects its apply mode would send, computed on the controller with no cluster."""
    role_dir = PROJECT_ROOT / "roles" / role
    dest = workdir / "objects.json"
    playbook = workdir / "objects.yml"
    playbook.write_text(ROLE_OBJECTS_PLAYBOOK.format(role=role, objects=role_dir / "vars" / "objects.yml",
                                                     expression=expression, dest=dest))
    if (role_dir / "files").is_dir() and not (workdir / "files").exists():
        # outside the role, the file lookup searches the playbook's files/
        (workdir / "files").symlink_to(role_dir / "files", target_is_directory=True)
    run = run_playbook(collections, str(playbook), inventory, extra_vars, env=env)
    assert run.returncode == 0, run.output[-4000:]
    return json.loads(dest.read_text())
