# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""node_profile_facts' bandwidth options: off by default, refused where they cannot mean this machine."""

from __future__ import annotations

import os

from tests.module_runner import run_module


def test_off_by_default_the_profile_says_so(samples):
    out = run_module("node_profile_facts", {"root": os.path.join(samples, "ryzen7-5800x-1s-smt")})
    assert not out["failed"], out
    profile = out["ansible_facts"]["ollama_node_profile"]
    assert profile["memory_bandwidth"] is None
    assert profile["memory_bandwidth_status"] == {"source": "skipped", "reason": "measurement turned off",
                                                  "seconds": 0.0}


def test_measuring_a_recorded_tree_is_refused(samples):
    root = os.path.join(samples, "ryzen7-5800x-1s-smt")
    out = run_module("node_profile_facts", {"root": root, "measure_bandwidth": True})
    assert out["failed"]
    assert out["msg"] == (f"measure_bandwidth measures the machine the module runs on, but root is {root!r}, a "
                          "recorded tree: set measure_bandwidth false, or root /")


def test_negative_bandwidth_options_are_refused():
    out = run_module("node_profile_facts", {"measure_bandwidth": True, "bandwidth_workers": -1,
                                            "isa_policy": "ignore"})
    assert out["failed"]
    assert out["msg"].startswith("bandwidth_workers (-1) and bandwidth_seconds (2.0) must not be negative")
