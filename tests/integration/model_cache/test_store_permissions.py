"""ollama_store_model run as an unprivileged user on a store it cannot write, against the real registry.

The other tests run as root, for whom every directory is writable, so the permission branch of the
store check never runs for real there. Here the module runs as `nobody` in a process of its own,
the way Ansible runs it on a target: the module and the module_utils it imports shipped as one zip
(as AnsiballZ ships them), the arguments as JSON on stdin, the result as JSON on stdout.

pytest's temporary directories sit under a directory only root may enter, and no permission outside
tmp_path is changed: the process gets an open descriptor of a directory created here instead, and
reaches the payload and the store through /proc/self/fd/<n>, which does not walk the parents.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import ansible.module_utils
import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef

PROJECT_ROOT = Path(__file__).resolve().parents[3]
NOBODY = 65534
SETPRIV = shutil.which("setpriv")
MODULE = "ansible_collections.aiplatform.ollama.plugins.modules.ollama_store_model"

def module_payload(dest: Path) -> Path:
    """A zip of ansible.module_utils and the work tree's plugins: everything the module can import."""
    module_utils = Path(ansible.module_utils.__file__).parent
    with zipfile.ZipFile(dest, "w") as payload:
        for package in ("ansible", "ansible_collections", "ansible_collections/aiplatform",
                        "ansible_collections/aiplatform/ollama", "ansible_collections/aiplatform/ollama/plugins",
                        "ansible_collections/aiplatform/ollama/plugins/modules",
                        "ansible_collections/aiplatform/ollama/plugins/module_utils"):
            payload.writestr(f"{package}/__init__.py", "")
        for source in module_utils.rglob("*.py"):
            payload.write(source, f"ansible/module_utils/{source.relative_to(module_utils)}")
        for folder in ("modules", "module_utils"):
            for source in (PROJECT_ROOT / "plugins" / folder).glob("*.py"):
                payload.write(source, f"ansible_collections/aiplatform/ollama/plugins/{folder}/{source.name}")
    dest.chmod(0o644)
    return dest


def system_python() -> str:
    """An interpreter outside any venv of root's, which `nobody` may run (the module needs only the stdlib)."""
    python = shutil.which("python3", path=os.defpath)
    assert python, f"no python3 on {os.defpath} for the unprivileged user to run the module with"
    return python


def run_as_nobody(jail: Path, args: dict) -> dict:
    """Run the module as uid/gid 65534 with `args`; `jail` is reached as /proc/self/fd/<n> (see jail_path)."""
    # a missing tool fails the test rather than skipping it: the branch it covers is tested nowhere else
    assert SETPRIV, "setpriv (util-linux) is needed to run the module as an unprivileged user: install util-linux"
    fd = os.open(jail, os.O_RDONLY | os.O_DIRECTORY)
    try:
        where = f"/proc/self/fd/{fd}"
        argv = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", system_python(),
                "-m", MODULE]
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONPATH": f"{where}/payload.zip",
               "PYTHONDONTWRITEBYTECODE": "1"}
        stdin = json.dumps({"ANSIBLE_MODULE_ARGS": {k: v.replace("{jail}", where) if isinstance(v, str) else v
                                                    for k, v in args.items()}})
        proc = subprocess.run(argv, input=stdin, env=env, cwd="/", pass_fds=(fd,), capture_output=True,
                              text=True, timeout=300)
    finally:
        os.close(fd)
    assert proc.stdout.strip(), f"the module printed no result (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout)
    # a module that fails exits 1 having printed its result; an exception would print no JSON above
    assert proc.returncode == (1 if result.get("failed") else 0), (proc.returncode, result, proc.stderr[-3000:])
    return dict(result, fd_path=where)


@pytest.fixture
def jail(tmp_path) -> Path:
    """A directory `nobody` may enter (but not write) holding the module payload: created and opened here."""
    jail = tmp_path / "jail"
    jail.mkdir()
    jail.chmod(0o755)
    module_payload(jail / "payload.zip")
    return jail


def test_a_store_this_user_cannot_write_is_reported_as_such_and_nothing_is_written(jail, tiny_model):
    store = jail / "models"
    store.mkdir()
    store.chmod(0o755)  # root's, as a volume mounted without the pod's fsGroup would be
    assert store.stat().st_uid == 0

    out = run_as_nobody(jail, dict(name=[tiny_model.ref], path="{jail}/models", insecure=True))

    store_path = f"{out['fd_path']}/models"
    assert out["failed"], out
    msg = out["msg"]
    # the uid in the message shows the module did run as nobody
    assert msg.startswith(f"cannot seed {ModelRef.parse(tiny_model.ref).short} into {store_path}: "
                          f"user {NOBODY} cannot write to {store_path} (owner 0, mode 0o755)"), msg
    assert "become: true" in msg and "writable by that user" in msg and msg.endswith("nothing was written"), msg
    # not mistaken for a registry or disk problem, and nothing claimed
    assert "registry" not in msg and "space" not in msg, msg
    assert out["changed"] is False and out["action"] == "none"
    assert out["blobs_downloaded"] == [] and out["bytes_transferred"] == 0
    assert out["error"] == {"kind": "unwritable", "path": store_path}
    assert list(store.iterdir()) == []
    assert not [p for p in jail.rglob("*") if p.name.endswith("-partial")]
    assert stat.S_IMODE(store.stat().st_mode) == 0o755
