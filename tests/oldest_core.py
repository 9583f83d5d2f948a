"""pytest plugin for `make oldest`: the unit tests on the oldest ansible-core meta/runtime.yml claims.

Loaded only there (`python -m pytest -p tests.oldest_core`). The tests use two test-side facilities of
ansible-core 2.19; on an older core this plugin stands in for them, and for nothing else, so the
plugins under test run on the real old core:

- `ansible.module_utils.testing.patch_module_args` (new in 2.19) is provided the way module arguments
  were handed to AnsibleModule before it: `basic._ANSIBLE_ARGS`, the JSON a module reads on stdin.
- data tagging (`ansible._internal`, new in 2.19) has no older equivalent: a test module importing it
  is reported as skipped, with that reason, instead of failing to import.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import json
import os
import sys
import types
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.release import __version__ as ANSIBLE_CORE_VERSION

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TESTS = os.path.join(_ROOT, "tests") + os.sep


@contextlib.contextmanager
def patch_module_args(args: dict | None = None):
    """Expose args to the AnsibleModule instances created within this context (2.19's signature)."""
    if not isinstance(args, (dict, type(None))):
        raise TypeError("The `args` arg must be a dict or None.")
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
    with mock.patch.object(basic, "_ANSIBLE_ARGS", payload):
        yield


class _SkipDataTagging(importlib.abc.MetaPathFinder):
    """Turns an import of ansible._internal (2.19's data tagging) into a skip of the importing module."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "ansible._internal" or fullname.startswith("ansible._internal."):
            importer = next((os.path.relpath(f.f_code.co_filename, _ROOT) for f in _frames()
                             if f.f_code.co_filename.startswith(_TESTS) and f.f_code.co_filename != __file__),
                            "a test module")
            raise pytest.skip.Exception(
                f"{importer} needs ansible-core 2.19's data tagging ({fullname}), which {ANSIBLE_CORE_VERSION} "
                "does not have",
                allow_module_level=True,
            )
        return None


def _frames():
    frame = sys._getframe(1)
    while frame is not None:
        yield frame
        frame = frame.f_back


if importlib.util.find_spec("ansible.module_utils.testing") is None:
    _testing = types.ModuleType("ansible.module_utils.testing")
    _testing.__doc__ = "Stand-in for ansible-core 2.19's module testing helpers (tests/oldest_core.py)."
    _testing.patch_module_args = patch_module_args
    sys.modules[_testing.__name__] = _testing
    sys.modules["ansible.module_utils"].testing = _testing

if importlib.util.find_spec("ansible._internal") is None:
    sys.meta_path.insert(0, _SkipDataTagging())


def pytest_report_header(config):
    return f"ansible-core {ANSIBLE_CORE_VERSION} (tests/oldest_core.py: the oldest ansible-core claimed)"
