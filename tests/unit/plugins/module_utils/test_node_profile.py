# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Node profile parsing against recorded /proc and /sys outputs of several CPU families."""

from __future__ import annotations

import os

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils import (
    node_profile as np,
)

GIB = 1024 ** 3

# sample: (model, sockets, physical cores, threads/core, logical, numa nodes, avx2, avx512f, vnni, amx)
TOPOLOGY = {
    "kvm-sapphire-rapids-2vcpu": ("Intel(R) Xeon(R) Processor", 1, 2, 1, 2, 1, True, True, True, True),
    "ryzen7-5800x-1s-smt": ("AMD Ryzen 7 5800X 8-Core Processor", 1, 8, 2, 16, 1, True, False, False, False),
    "xeon-gold-6248-2s-numa-smt":
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 2, 40, 2, 80, 2, True, True, True, False),
    "xeon-silver-4210-2s-numa-nosmt":
        ("Intel(R) Xeon(R) Silver 4210 CPU @ 2.20GHz", 2, 20, 1, 20, 2, True, True, True, False),
    "xeon-e5-2680v2-1s-noavx2":
        ("Intel(R) Xeon(R) CPU E5-2680 v2 @ 2.80GHz", 1, 10, 2, 20, 1, False, False, False, False),
}


def profile_of(samples, name, **kwargs):
    kwargs.setdefault("sysctl_keys", ["vm.swappiness", "kernel.numa_balancing"])
    return np.build_profile(os.path.join(samples, name), **kwargs)


@pytest.mark.parametrize("name", sorted(TOPOLOGY))
def test_topology_and_isa(samples, name):
    model, sockets, cores, tpc, logical, numa, avx2, avx512f, vnni, amx = TOPOLOGY[name]
    profile = profile_of(samples, name)
    assert profile["cpu_model"] == model
    assert (profile["sockets"], profile["physical_cores"], profile["threads_per_core"]) == (sockets, cores, tpc)
    assert profile["logical_cpus"] == logical
    assert profile["smt_active"] is (tpc > 1)
    assert profile["numa_nodes"] == numa
    assert profile["isa"]["avx2"] is avx2
    assert profile["isa"]["avx512f"] is avx512f
    assert profile["isa"]["avx512_vnni"] is vnni
    assert profile["isa"]["amx"] is amx


def test_two_numa_nodes_split_cpus_and_reserve_one_core_each(samples):
    profile = profile_of(samples, "xeon-gold-6248-2s-numa-smt")
    assert profile["numa_node_cpus"]["0"] == list(range(20)) + list(range(40, 60))
    assert profile["numa_node_cpus"]["1"] == list(range(20, 40)) + list(range(60, 80))
    assert profile["physical_cores_per_numa_node"] == 20
    # core 0 of socket 0 is CPUs 0 and 40, core 0 of socket 1 is CPUs 20 and 60
    assert profile["suggested_reserved_cpus"] == "0,20,40,60"
    assert profile["sysctl"]["kernel.numa_balancing"]["value"] == "1"


def test_smt_off_reserves_single_cpus(samples):
    assert profile_of(samples, "xeon-silver-4210-2s-numa-nosmt")["suggested_reserved_cpus"] == "0,10"


@pytest.mark.parametrize("name,limit,expected", [
    ("xeon-gold-6248-2s-numa-smt", "2000m", 2),
    ("xeon-gold-6248-2s-numa-smt", "1500m", 1),
    ("xeon-gold-6248-2s-numa-smt", "64", 20),   # one NUMA node's physical cores, not 80 threads
    ("xeon-gold-6248-2s-numa-smt", "", 20),
    ("ryzen7-5800x-1s-smt", "16", 8),           # SMT siblings add no memory bandwidth
    ("ryzen7-5800x-1s-smt", None, 8),
    ("kvm-sapphire-rapids-2vcpu", "500m", 1),   # never zero threads
    ("xeon-silver-4210-2s-numa-nosmt", 4, 4),
])
def test_recommended_num_thread(samples, name, limit, expected):
    assert profile_of(samples, name, cpu_limit=limit)["recommended_num_thread"] == expected


def test_memory_budget_auto_and_explicit(samples):
    auto = profile_of(samples, "ryzen7-5800x-1s-smt")
    total = 32780000 * 1024
    assert auto["memory_total_bytes"] == total
    assert auto["memory_reserved_bytes"] == max(2 * GIB, total // 10)
    assert auto["memory_budget_bytes"] == total - auto["memory_reserved_bytes"]
    explicit = profile_of(samples, "ryzen7-5800x-1s-smt", memory_reserved="4Gi")
    assert explicit["memory_budget_bytes"] == total - 4 * GIB


def test_swap_cpufreq_and_thp(samples):
    ryzen = profile_of(samples, "ryzen7-5800x-1s-smt")
    assert ryzen["swap_active"] is True
    assert ryzen["swap_devices"] == [{"device": "/swap.img", "type": "file", "size_bytes": 2097148 * 1024}]
    assert ryzen["cpufreq"]["available"] is True
    assert ryzen["cpufreq"]["driver"] == "acpi-cpufreq"
    assert "performance" in ryzen["cpufreq"]["governors"]
    assert ryzen["cpufreq"]["current"] == ["schedutil"]
    assert ryzen["thp"]["enabled"] == "madvise"
    gold = profile_of(samples, "xeon-gold-6248-2s-numa-smt")
    assert gold["swap_active"] is False
    assert gold["thp"]["enabled"] == "always"


def test_vm_without_cpufreq_says_why(samples):
    kvm = profile_of(samples, "kvm-sapphire-rapids-2vcpu")
    assert kvm["virtualization"]["vm"]
    assert kvm["virtualization"]["bare_metal"] is False
    assert kvm["cpufreq"]["available"] is False
    assert "cpufreq" in kvm["cpufreq"]["reason"]


def test_missing_sysctl_is_reported_not_raised(samples):
    ryzen = profile_of(samples, "ryzen7-5800x-1s-smt")
    assert ryzen["sysctl"]["kernel.numa_balancing"] == {"value": None, "exists": False, "writable": False}


def test_no_avx2_message_names_model_and_flags(samples):
    profile = profile_of(samples, "xeon-e5-2680v2-1s-noavx2")
    message = np.isa_failure(profile, ["avx2"])
    assert "Intel(R) Xeon(R) CPU E5-2680 v2 @ 2.80GHz" in message
    assert "lacks avx2" in message
    assert "avx f16c sse4_1 sse4_2 ssse3" in message
    assert np.isa_failure(profile_of(samples, "ryzen7-5800x-1s-smt"), ["avx2"]) is None
    assert "avx512f" in np.isa_failure(profile_of(samples, "ryzen7-5800x-1s-smt"), ["avx2", "avx512f"])


def test_container_markers(tmp_path, samples):
    root = tmp_path / "node"
    (root / "proc" / "1").mkdir(parents=True)
    with open(os.path.join(samples, "ryzen7-5800x-1s-smt", "proc", "cpuinfo")) as recorded:
        (root / "proc" / "cpuinfo").write_text(recorded.read())
    (root / "proc" / "1" / "environ").write_bytes(b"PATH=/usr/bin\0container=podman\0")
    assert np.build_profile(str(root))["virtualization"]["container"] == "podman"
    (root / "run" / "systemd").mkdir(parents=True)
    (root / "run" / "systemd" / "container").write_text("lxc\n")
    assert np.build_profile(str(root))["virtualization"]["container"] == "lxc"


def test_cpuinfo_without_topology_ids_counts_each_cpu_as_a_core():
    text = "processor\t: 0\nFeatures\t: fp asimd\n\nprocessor\t: 1\nFeatures\t: fp asimd\n\n"
    topology = np.cpu_topology(np.parse_cpuinfo(text))
    assert (topology["sockets"], topology["physical_cores"], topology["threads_per_core"]) == (1, 2, 1)


@pytest.mark.parametrize("text,cpus", [("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]), ("", []), ("5\n", [5])])
def test_cpulist_round_trip(text, cpus):
    assert np.parse_cpulist(text) == cpus
    if cpus:
        assert np.parse_cpulist(np.format_cpulist(cpus)) == cpus


@pytest.mark.parametrize("value,expected", [("4Gi", 4 * GIB), ("512Mi", 512 * 1024 ** 2), ("3G", 3 * 10 ** 9),
                                            (1024, 1024), ("", None)])
def test_memory_quantity(value, expected):
    assert np.parse_memory_quantity(value) == expected


def test_memory_quantity_error_names_input():
    with pytest.raises(ValueError, match="4GB"):
        np.parse_memory_quantity("4GB")


@pytest.mark.parametrize("value,expected", [("2000m", 2.0), ("1", 1.0), (1.5, 1.5), ("", None), (None, None)])
def test_cpu_quantity(value, expected):
    assert np.parse_cpu_quantity(value) == expected
