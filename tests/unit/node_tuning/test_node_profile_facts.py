# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node_profile_facts module: exit and fail paths on recorded nodes."""

from __future__ import annotations

import os
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiplatform.ollama.plugins.modules import node_profile_facts


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


def test_publishes_profile_fact(samples):
    with pytest.raises(ModuleExit) as result:
        run({"root": os.path.join(samples, "xeon-gold-6248-2s-numa-smt"), "cpu_limit": "2000m"})
    out = result.value.args[0]
    assert out["changed"] is False
    profile = out["ansible_facts"]["ollama_node_profile"]
    assert profile["recommended_num_thread"] == 2
    assert profile["numa_nodes"] == 2


def test_fails_without_avx2_naming_model_and_flags(samples):
    with pytest.raises(ModuleFail) as result:
        run({"root": os.path.join(samples, "xeon-e5-2680v2-1s-noavx2")})
    out = result.value.args[0]
    assert "E5-2680 v2" in out["msg"]
    assert "avx f16c sse4_1 sse4_2 ssse3" in out["msg"]
    assert out["isa_missing"] == ["avx2"]
    # the profile comes back for a rescue block to show, but is not set as the host's fact
    assert "ansible_facts" not in out
    assert out["ollama_node_profile"]["isa"]["avx2"] is False


def test_warn_policy_goes_on(samples):
    warnings = []
    with pytest.raises(ModuleExit) as result:
        run({"root": os.path.join(samples, "xeon-e5-2680v2-1s-noavx2"), "isa_policy": "warn"}, warnings)
    out = result.value.args[0]
    assert out["isa_missing"] == ["avx2"]
    assert "lacks avx2" in out["isa_message"]
    assert any("lacks avx2" in warning for warning in warnings)


def test_bad_memory_reserved_names_input(samples):
    with pytest.raises(ModuleFail) as result:
        run({"root": os.path.join(samples, "ryzen7-5800x-1s-smt"), "memory_reserved": "lots"})
    assert "memory_reserved='lots'" in result.value.args[0]["msg"]
