# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recorded /proc and /sys trees of several CPU families (tests/unit/node_samples), for the node profile tests."""

from __future__ import annotations

import os

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.node_profile import NODE_ROOT_ENV

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "node_samples")


@pytest.fixture
def samples():
    return SAMPLES


@pytest.fixture(autouse=True)
def _real_root_unless_told(monkeypatch):
    # a value left in the environment would point every test that means this machine at a recorded tree
    monkeypatch.delenv(NODE_ROOT_ENV, raising=False)


@pytest.fixture
def node_root(monkeypatch):
    """Point node_profile_facts at a recorded tree through its test seam; returns the tree's path."""

    def use(name):
        path = os.path.join(SAMPLES, name)
        monkeypatch.setenv(NODE_ROOT_ENV, path)
        return path

    return use
