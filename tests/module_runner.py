"""Run a module's main() in-process, exit_json/fail_json turned into a returned result.

As kubernetes.core's unit tests do: the module talks to the real services, only its exit is caught.
The plugins are imported from the work tree (tests/conftest.py puts it on sys.path).
"""

from __future__ import annotations

import importlib
import urllib.request

import pytest


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
