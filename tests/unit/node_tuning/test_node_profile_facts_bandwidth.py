# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""node_profile_facts' bandwidth options: off by default, refused where they cannot mean this machine."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.node_profile import NODE_ROOT_ENV
from tests.module_runner import run_module


def test_off_by_default_the_profile_says_so(node_root):
    node_root("ryzen7-5800x-1s-smt")
    out = run_module("node_profile_facts", {})
    assert not out["failed"], out
    profile = out["ansible_facts"]["ollama_node_profile"]
    assert profile["memory_bandwidth"] is None
    assert profile["memory_bandwidth_status"] == {"source": "skipped", "reason": "measurement turned off",
                                                  "seconds": 0.0}


def test_measuring_a_recorded_tree_is_refused(node_root):
    root = node_root("ryzen7-5800x-1s-smt")
    out = run_module("node_profile_facts", {"measure_bandwidth": True})
    assert out["failed"]
    assert out["msg"] == (f"measure_bandwidth measures the machine the module runs on, but {NODE_ROOT_ENV} points "
                          f"the module at {root!r}, a recorded tree: set measure_bandwidth false, or unset "
                          f"{NODE_ROOT_ENV}")


def test_negative_bandwidth_options_are_refused():
    out = run_module("node_profile_facts", {"measure_bandwidth": True, "bandwidth_workers": -1,
                                            "isa_policy": "ignore"})
    assert out["failed"]
    assert out["msg"].startswith("bandwidth_workers (-1) and bandwidth_seconds (2.0) must not be negative")
