"""Import the collection's plugins from the work tree (as ansible_collections.aiplatform.ollama) and run
modules in-process, turning exit_json/fail_json into a returned result."""

from __future__ import annotations

import importlib
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def collection_on_path(base: Path) -> None:
    """Make `ansible_collections.aiplatform.ollama` resolve to this work tree, not an installed copy."""
    link = base / "ansible_collections" / "aiplatform" / "ollama"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(PROJECT_ROOT, target_is_directory=True)
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))


try:
    import ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref  # noqa: F401
except ImportError:
    # needed at import time: test modules import the plugins when pytest collects them
    collection_on_path(Path(tempfile.mkdtemp(prefix="ollama_modules_collections_")))


class ModuleExit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


def run_module(module: str, args: dict, check_mode: bool = False, diff: bool = True) -> dict:
    """Run plugins/modules/<module>.py main() with args; the result dict has failed=True on fail_json."""
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    mod = importlib.import_module(f"ansible_collections.aiplatform.ollama.plugins.modules.{module}")

    warnings = []

    def exit_json(self, **kwargs):
        raise ModuleExit(dict(kwargs, failed=False, warnings=warnings))

    def fail_json(self, msg="", **kwargs):
        raise ModuleExit(dict(kwargs, msg=msg, failed=True, warnings=warnings))

    patched = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(basic.AnsibleModule, "exit_json", exit_json)
        mp.setattr(basic.AnsibleModule, "fail_json", fail_json)
        mp.setattr(basic.AnsibleModule, "warn", lambda self, warning: warnings.append(warning))
        with patch_module_args(patched):
            try:
                mod.main()
            except ModuleExit as done:
                return done.result
            finally:
                # Ansible's URL layer installs its opener (with the proxies of that moment) as urllib's
                # global one; a module process drops it on exit, the test process must do so itself
                urllib.request.install_opener(None)
    raise AssertionError(f"{module} returned without exit_json or fail_json")


@pytest.fixture(scope="session")
def module_runner():
    return run_module


@pytest.fixture(scope="session")
def collection_root(tmp_path_factory) -> Path:
    """A collections path whose aiplatform.ollama is this work tree, for ansible-playbook runs."""
    base = tmp_path_factory.mktemp("collections")
    collection_on_path(base)
    return base


@pytest.fixture(scope="session")
def ansible_env(collection_root):
    """Environment for the ansible CLIs: this tree's collection first, then the installed ones."""
    import os

    installed = os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(PROJECT_ROOT / ".collections"))
    return {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": f"{collection_root}:{installed}",
        "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "PYTHONUNBUFFERED": "1",
    }
