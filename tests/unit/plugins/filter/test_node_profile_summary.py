"""node_tuning's four lines about a node, from profiles of recorded nodes (tests/unit/node_samples)."""

from __future__ import annotations

import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.node_profile_summary import FilterModule
from ansible_collections.aiplatform.ollama.plugins.module_utils import node_profile

summary = FilterModule().filters()["node_profile_summary"]
MEASURED = {"gb_per_s": 21.4, "repetitions": 10, "workers": 2, "cpus": [0, 1]}


def profile_of(samples, name, bandwidth=None, status=None, **kwargs):
    profile = node_profile.build_profile(os.path.join(samples, name), **kwargs)
    profile["memory_bandwidth"] = bandwidth
    profile["memory_bandwidth_status"] = status or {"source": "measured", "reason": ""}
    return profile


def test_a_two_socket_host_with_a_measured_bandwidth(samples):
    profile = profile_of(samples, "xeon-gold-6248-2s-numa-smt", MEASURED, cpu_limit="8")
    lines = summary(profile, pod_cpu_limit="8")
    assert lines[0] == ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz: 2 socket(s), 40 physical cores, 2 thread(s)/core, "
                        "2 NUMA node(s), ISA avx2 avx512f avx512_vnni")
    assert lines[1].startswith("memory ") and " GiB, budget for the Ollama pod " in lines[1]
    assert lines[1].endswith(f"; THP {profile['thp']['enabled']}; bare metal")
    assert lines[2] == f"num_thread {profile['recommended_num_thread']} for CPU limit 8"
    assert lines[3] == "memory bandwidth 21.4 GB/s (STREAM copy, best of 10, 2 worker(s) on CPUs 0,1; measured)"


def test_a_vm_without_a_limit_or_a_measurement(samples):
    profile = profile_of(samples, "kvm-sapphire-rapids-2vcpu", None,
                         {"source": "skipped", "reason": "measurement turned off"})
    lines = summary(profile)
    assert lines[1].endswith(f"; VM {profile['virtualization']['vm']}")
    assert lines[2].endswith("for CPU limit unset (one NUMA node)")
    assert lines[3] == "memory bandwidth not measured (skipped: measurement turned off)"


def test_a_container_and_a_reused_measurement(samples):
    profile = profile_of(samples, "xeon-e5-2680v2-1s-noavx2", MEASURED,
                         {"source": "reused", "reason": "measured earlier, read from /etc/ansible/facts.d/x.fact"})
    lines = summary(profile, container="podman")
    assert lines[0].endswith("ISA baseline")
    assert lines[1].endswith("; container podman")
    assert lines[3].endswith("; reused: measured earlier, read from /etc/ansible/facts.d/x.fact)")


def test_something_else_than_a_profile_is_named():
    with pytest.raises(AnsibleFilterError, match="node_profile_summary: the input is not an ollama_node_profile fact"):
        summary({"cpu_model": "x"})
