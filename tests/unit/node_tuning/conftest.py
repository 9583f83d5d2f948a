# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the work tree importable as ansible_collections.aiplatform.ollama, as Ansible sees it."""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SAMPLES = os.path.join(os.path.dirname(__file__), "samples")


def _collection_path():
    base = tempfile.mkdtemp(prefix="node_tuning_collections_")
    namespace = os.path.join(base, "ansible_collections", "aiplatform")
    os.makedirs(namespace)
    os.symlink(REPO_ROOT, os.path.join(namespace, "ollama"))
    return base


try:
    import ansible_collections.aiplatform.ollama.plugins.module_utils.node_profile  # noqa: F401
except ImportError:
    sys.path.insert(0, _collection_path())


@pytest.fixture
def samples():
    return SAMPLES
