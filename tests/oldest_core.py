"""pytest plugin for `make oldest`: the unit tests on the oldest ansible-core meta/runtime.yml claims.

Loaded only there (`python -m pytest -p tests.oldest_core`). The tests use one test-side facility of
ansible-core 2.19 that older cores lack: `ansible.module_utils.testing.patch_module_args`. This plugin
provides it the way module arguments were handed to AnsibleModule before it (`basic._ANSIBLE_ARGS`,
the JSON a module reads on stdin), and nothing else, so the plugins under test run on the real old
core. (The test of Ansible's own value types builds the types of the core it runs on: tagged values
on 2.19, the YAML objects and unsafe text before.)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import types
from unittest import mock

from ansible.module_utils import basic
from ansible.release import __version__ as ANSIBLE_CORE_VERSION


@contextlib.contextmanager
def patch_module_args(args: dict | None = None):
    """Expose args to the AnsibleModule instances created within this context (2.19's signature)."""
    if not isinstance(args, (dict, type(None))):
        raise TypeError("The `args` arg must be a dict or None.")
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
    with mock.patch.object(basic, "_ANSIBLE_ARGS", payload):
        yield


if importlib.util.find_spec("ansible.module_utils.testing") is None:
    _testing = types.ModuleType("ansible.module_utils.testing")
    _testing.__doc__ = "Stand-in for ansible-core 2.19's module testing helpers (tests/oldest_core.py)."
    _testing.patch_module_args = patch_module_args
    sys.modules[_testing.__name__] = _testing
    sys.modules["ansible.module_utils"].testing = _testing


def pytest_report_header(config):
    return f"ansible-core {ANSIBLE_CORE_VERSION} (tests/oldest_core.py: the oldest ansible-core claimed)"
