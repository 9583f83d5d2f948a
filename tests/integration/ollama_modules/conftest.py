"""The ansible CLIs' environment for the playbook and ad hoc tests of the Ollama modules."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def ansible_env(work_tree_collections):
    """Environment for the ansible CLIs: this tree's collection first, then the installed ones."""
    import os

    installed = os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(PROJECT_ROOT / ".collections"))
    return {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": f"{work_tree_collections}:{installed}",
        "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "PYTHONUNBUFFERED": "1",
    }
