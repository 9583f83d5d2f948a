"""A team with only the tarball, in an empty directory: the README's user instructions, run as written.

The tarball is built as a release is, then installed the way the README's "Using the collection" section
says, into ./collections of a fresh temporary directory far from this repository, with a HOME of its own
and none of the development environment's ANSIBLE_* variables. Only the Ansible of the venv (the user's
own: ansible-core with kubernetes.core, ansible.posix and community.general, as the full `ansible`
package ships them) is shared.

The README lines these tests hold (USER_INSTALL below, and the ansible.cfg alternative):

    ansible-galaxy collection install --offline -p ./collections aiplatform-ollama-<version>.tar.gz
    export ANSIBLE_COLLECTIONS_PATH="$PWD/collections"
    pip install -r collections/ansible_collections/aiplatform/ollama/requirements.txt
    ansible-doc -l aiplatform.ollama

Without ANSIBLE_COLLECTIONS_PATH (the complaint in issue 11) ansible-doc and any playbook not beside
./collections cannot find the collection: test_without_collections_path_nothing_finds_it.

"Using it from your own playbooks" is followed too: a role of the collection, model_cache with its
directory target, runs from the user's own playbook and inventory on the host its table names (the
host holding the store directory), seeding a real model from a real registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
TARBALL = f"aiplatform-ollama-{VERSION}.tar.gz"
INSTALLED = Path("collections/ansible_collections/aiplatform/ollama")
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")

# A playbook of the user's own, in a subdirectory of their project (so not beside ./collections):
# two modules against their Ollama, the action group for the connection settings, and a filter.
USER_PLAYBOOK = """\
- name: Our own check of the Ollama we run
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/aiplatform.ollama.ollama:
      host: "{{ ollama_url }}"
      timeout: 10
  tasks:
    - name: What the server runs and holds
      aiplatform.ollama.ollama_info:
      register: info

    - name: Answers its API
      aiplatform.ollama.ollama_health:
        level: version
      register: health

    - name: The model we plan to serve, parsed as the collection does
      ansible.builtin.set_fact:
        planned: "{{ 'qwen2.5:0.5b' | aiplatform.ollama.model_ref }}"

    - name: Keep what we found
      ansible.builtin.copy:
        content: "{{ {'info': info, 'health': health, 'planned': planned} | to_json }}"
        dest: "{{ playbook_dir }}/found.json"
        mode: "0600"
"""


# A playbook of the user's own calling a role of the collection: model_cache with the directory target
# runs on "the host holding the store directory" (README, "Using it from your own playbooks"), a group
# of the user's inventory; here that host is this one, reached by the local connection.
USER_ROLE_PLAYBOOK = """\
- name: Seed our Ollama model store before the server starts
  hosts: model_store
  gather_facts: false
  roles:
    - role: aiplatform.ollama.model_cache
"""

USER_INVENTORY = """\
all:
  children:
    model_store:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
      vars:
        model_cache_target: directory
        model_cache_path: {store}
        model_cache_models: [{model}]
        model_cache_insecure: true
"""


def _user_env(user_dir: Path, **extra: str) -> dict:
    """A new user's shell: no ANSIBLE_* of the development environment, a HOME of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=str(user_dir / "home"), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", **extra)
    return env


def _descendants(pid: int) -> list[int]:
    """The processes started under pid, read from /proc while their parent still lives."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def _run(argv: list, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """On a timeout the command and every process under it are killed: ansible-playbook's forked workers
    start sessions of their own, so neither subprocess.run nor a process-group kill would reach them."""
    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in [*_descendants(proc.pid), proc.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"{' '.join(map(str, argv))} did not finish within {timeout}s:\n"
                        f"{stdout[-3000:]}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"{' '.join(map(str, done.args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    """An empty directory with the tarball in it, installed there as the README says."""
    user_dir = tmp_path_factory.mktemp("user-project")
    assert ROOT not in user_dir.parents, "the user's directory must not be beside the repository"
    (user_dir / "home").mkdir()
    # the tarball as a release builds it, handed to the user
    _ok(_run([BIN / "ansible-galaxy", "collection", "build", "--force", "--output-path", str(user_dir)], ROOT,
             _user_env(user_dir)))
    assert (user_dir / TARBALL).is_file()
    installed = _run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", "./collections", TARBALL],
                     user_dir, _user_env(user_dir))
    _ok(installed)
    # ansible-galaxy itself says that ./collections is not where Ansible looks: the README's next line fixes that
    assert "is not part of the configured Ansible collections paths" in " ".join(installed.stderr.split())
    assert json.loads((user_dir / INSTALLED / "MANIFEST.json").read_text())["collection_info"]["version"] == VERSION
    (user_dir / "playbooks").mkdir()
    (user_dir / "playbooks" / "check_ollama.yml").write_text(USER_PLAYBOOK)
    (user_dir / "playbooks" / "seed_store.yml").write_text(USER_ROLE_PLAYBOOK)
    return user_dir


def _with_path(user_dir: Path) -> dict:
    """After the README's `export ANSIBLE_COLLECTIONS_PATH="$PWD/collections"`."""
    return _user_env(user_dir, ANSIBLE_COLLECTIONS_PATH=str(user_dir / "collections"))


def test_without_collections_path_nothing_finds_it(user_dir):
    env = _user_env(user_dir)
    listed = _run([BIN / "ansible-doc", "-l", "aiplatform.ollama"], user_dir, env)
    assert listed.returncode != 0 and "unable to locate collection aiplatform.ollama" in listed.stderr, listed
    play = _run([BIN / "ansible-playbook", "playbooks/check_ollama.yml", "-e", "ollama_url=http://127.0.0.1:9"],
                user_dir, env)
    said = " ".join((play.stdout + play.stderr).split())
    assert play.returncode != 0
    # the first use of the collection fails: here its action group in module_defaults, else the first module
    assert re.search(r"could not resolve the module_defaults group aiplatform\.ollama\.ollama"
                     r"|couldn't resolve module/action 'aiplatform\.ollama\.", said), said


def test_ansible_doc_lists_and_renders(user_dir):
    env = _with_path(user_dir)
    elsewhere = user_dir / "home"  # the variable holds an absolute path: any working directory will do
    listed = _ok(_run([BIN / "ansible-doc", "-l", "aiplatform.ollama"], elsewhere, env))
    assert MODULES, "the collection has no modules"
    assert [m for m in MODULES if f"aiplatform.ollama.{m} " not in listed] == [], listed
    shown = _ok(_run([BIN / "ansible-doc", "aiplatform.ollama.ollama_health"], elsewhere, env))
    header = f"> MODULE aiplatform.ollama.ollama_health ({user_dir / INSTALLED}/plugins/modules/ollama_health.py)"
    assert shown.startswith(header), shown[:300]
    assert "OPTIONS" in shown and re.search(r"^[-=] host\s", shown, re.M) and "RETURN VALUES" in shown, shown
    filters = _ok(_run([BIN / "ansible-doc", "-t", "filter", "-l", "aiplatform.ollama"], elsewhere, env))
    assert "aiplatform.ollama.model_ref" in filters
    roles = _ok(_run([BIN / "ansible-doc", "-t", "role", "-l", "aiplatform.ollama"], elsewhere, env))
    assert "aiplatform.ollama.ollama_flux" in roles


def test_users_own_playbook_runs(user_dir, ollama):
    found = user_dir / "playbooks" / "found.json"
    found.unlink(missing_ok=True)
    play = _run([BIN / "ansible-playbook", "playbooks/check_ollama.yml", "-e", f"ollama_url={ollama.url}"],
                user_dir, _with_path(user_dir))
    assert play.returncode == 0, play.stdout + play.stderr
    assert re.search(r"localhost\s*:\s*ok=4\s+changed=1\s+unreachable=0\s+failed=0", play.stdout), play.stdout
    data = json.loads(found.read_text())
    assert data["info"]["version"] == os.environ.get("OLLAMA_VERSION", "0.18.3")
    assert data["health"]["healthy"] is True and data["health"]["passed"] == ["reachable", "version"]
    assert data["planned"]["full"] == "registry.ollama.ai/library/qwen2.5:0.5b"
    assert data["planned"]["tag"] == "0.5b"


def test_users_own_playbook_runs_a_role_of_the_collection(user_dir, tiny_model):
    """model_cache seeds a store from the registry; the second run finds the model in place: changed=0."""
    store = user_dir / "store" / "models"
    (user_dir / "inventory.yml").write_text(USER_INVENTORY.format(store=json.dumps(str(store)),
                                                                  model=json.dumps(tiny_model.ref)))
    # nothing of this repository reaches Ansible, so the role and its module can only come from the
    # installed tarball: no variable names it, and on PATH only the venv's bin (the user's own Ansible)
    env = {k: v for k, v in _with_path(user_dir).items() if k == "PATH" or str(ROOT) not in v}
    assert {Path(entry).resolve() for entry in env["PATH"].split(os.pathsep) if str(ROOT) in entry} <= {BIN.resolve()}
    argv = [BIN / "ansible-playbook", "-i", "inventory.yml", "playbooks/seed_store.yml"]

    first = _run(argv, user_dir, env, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "TASK [aiplatform.ollama.model_cache : Seed the models into" in first.stdout, first.stdout
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=1\s+unreachable=0\s+failed=0", first.stdout), first.stdout
    host, _, rest = tiny_model.ref.partition("/")
    manifest = store / "manifests" / host / Path(rest.replace(":", "/"))
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == tiny_model.manifest_digest.split(":", 1)[1]
    for layer in [tiny_model.manifest["config"], *tiny_model.manifest["layers"]]:
        assert (store / "blobs" / layer["digest"].replace(":", "-")).stat().st_size == layer["size"], layer

    again = _run(argv, user_dir, env, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", again.stdout), again.stdout
    assert "already complete" in again.stdout and "nothing to download" in again.stdout


def test_ansible_cfg_in_the_project_directory_also_works(user_dir):
    """The README's alternative: collections_path in ./ansible.cfg, for commands run from that directory."""
    project = user_dir / "cfg-project"
    project.mkdir()
    (project / "collections").symlink_to(user_dir / "collections", target_is_directory=True)
    (project / "ansible.cfg").write_text("[defaults]\ncollections_path = ./collections\n")
    listed = _ok(_run([BIN / "ansible-doc", "-l", "aiplatform.ollama"], project, _user_env(user_dir)))
    assert "aiplatform.ollama.ollama_info " in listed


def test_runtime_requirements_leave_the_users_ansible_alone(user_dir):
    """The requirements.txt users install names what the collection needs and never pins ansible-core."""
    requirements = user_dir / INSTALLED / "requirements.txt"
    names = [re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0].lower()
             for line in requirements.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert "kubernetes" in names and "pyyaml" in names
    assert not {"ansible", "ansible-core", "ansible-base"} & set(names), names
    assert not [n for n in names if n.startswith("-")], "the runtime file includes no other file"
    for dev_only in ("requirements-dev.txt", "requirements-oldest.txt"):
        assert not (user_dir / INSTALLED / dev_only).exists(), f"{dev_only} ships in the tarball"
    # what pip would do to the user's Python: nothing to install, the user's ansible-core untouched
    report = _ok(_run([BIN / "python", "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-",
                       "-r", str(requirements)], user_dir, _user_env(user_dir)))
    would_install = [item["metadata"]["name"].lower() for item in json.loads(report)["install"]]
    assert "ansible-core" not in would_install, would_install
