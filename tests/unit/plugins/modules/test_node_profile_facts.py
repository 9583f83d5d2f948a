# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node_profile_facts module: exit and fail paths on recorded nodes; its bandwidth options, off by default and
refused where they cannot mean this machine."""

from __future__ import annotations

import re
from unittest import mock

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiplatform.ollama.plugins.module_utils.node_profile import NODE_ROOT_ENV
from ansible_collections.aiplatform.ollama.plugins.modules import node_profile_facts
from tests.module_runner import run_module


class ModuleExit(Exception):
    pass


class ModuleFail(Exception):
    pass


def run(args, warnings=None):
    warnings = [] if warnings is None else warnings

    def exit_json(self, **kwargs):
        raise ModuleExit(kwargs)

    def fail_json(self, **kwargs):
        raise ModuleFail(kwargs)

    with patch_module_args(args), \
            mock.patch.object(node_profile_facts.AnsibleModule, "warn", warnings.append), \
            mock.patch.object(node_profile_facts.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(node_profile_facts.AnsibleModule, "fail_json", fail_json):
        node_profile_facts.main()


def test_publishes_profile_fact(node_root):
    node_root("xeon-gold-6248-2s-numa-smt")
    with pytest.raises(ModuleExit) as result:
        run({"cpu_limit": "2000m"})
    out = result.value.args[0]
    assert out["changed"] is False
    profile = out["ansible_facts"]["ollama_node_profile"]
    assert profile["recommended_num_thread"] == 2
    assert profile["numa_nodes"] == 2


def test_fails_without_avx2_naming_model_and_flags(node_root):
    node_root("xeon-e5-2680v2-1s-noavx2")
    with pytest.raises(ModuleFail) as result:
        run({})
    out = result.value.args[0]
    assert "E5-2680 v2" in out["msg"]
    assert "avx f16c sse4_1 sse4_2 ssse3" in out["msg"]
    assert out["isa_missing"] == ["avx2"]
    # the profile comes back for a rescue block to show, but is not set as the host's fact
    assert "ansible_facts" not in out
    assert out["ollama_node_profile"]["isa"]["avx2"] is False


def test_warn_policy_goes_on(node_root):
    node_root("xeon-e5-2680v2-1s-noavx2")
    warnings = []
    with pytest.raises(ModuleExit) as result:
        run({"isa_policy": "warn"}, warnings)
    out = result.value.args[0]
    assert out["isa_missing"] == ["avx2"]
    assert "lacks avx2" in out["isa_message"]
    assert any("lacks avx2" in warning for warning in warnings)


def test_bad_memory_reserved_names_input(node_root):
    node_root("ryzen7-5800x-1s-smt")
    with pytest.raises(ModuleFail) as result:
        run({"memory_reserved": "lots"})
    assert "memory_reserved='lots'" in result.value.args[0]["msg"]


def test_cpu_limit_in_words_fails_naming_the_accepted_forms(node_root):
    node_root("ryzen7-5800x-1s-smt")
    with pytest.raises(ModuleFail) as result:
        run({"cpu_limit": "two"})
    out = result.value.args[0]
    assert "cpu_limit='two'" in out["msg"]
    assert "'two' is not a Kubernetes CPU quantity; write e.g. 500m, 2 or 1.5 (millicores with an m, or cores, " \
           "whole or decimal)" in out["msg"]
    assert out["error"] == {"kind": "invalid_input"}
    assert "ansible_facts" not in out


def test_isa_failure_advises_its_own_option_and_the_role_variable(node_root):
    node_root("xeon-e5-2680v2-1s-noavx2")
    with pytest.raises(ModuleFail) as result:
        run({})
    msg = result.value.args[0]["msg"]
    # the module's own option, not only inside the role variable's name
    assert re.search(r"(?<!node_tuning_)isa_policy: warn", msg), msg
    assert "node_tuning_isa_policy: warn in the node_tuning role" in msg
    assert "Use a node with avx2 (AVX2 is x86-64-v3)" in msg


def test_isa_failure_names_what_is_missing_beyond_avx2(node_root):
    node_root("ryzen7-5800x-1s-smt")  # AVX2 but no AVX-512
    with pytest.raises(ModuleFail) as result:
        run({"required_isa": ["avx2", "avx512f"]})
    out = result.value.args[0]
    assert out["isa_missing"] == ["avx512f"]
    assert "Use a node with avx512f, or set isa_policy: warn" in out["msg"]


def test_the_tree_to_read_is_no_option(node_root):
    # only tests point the module elsewhere than /, through the environment; users never see it
    assert "root" not in yaml.safe_load(node_profile_facts.DOCUMENTATION)["options"]
    node_root("ryzen7-5800x-1s-smt")
    with pytest.raises(ModuleFail) as result:
        run({"root": "/"})
    assert "root" in result.value.args[0]["msg"] and "Unsupported parameters" in result.value.args[0]["msg"]


def test_the_tree_comes_from_the_environment(monkeypatch, samples):
    monkeypatch.setenv(NODE_ROOT_ENV, "")
    assert node_profile_facts.root_from_environment() == "/"
    monkeypatch.setenv(NODE_ROOT_ENV, samples)
    assert node_profile_facts.root_from_environment() == samples


# the bandwidth options


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
