# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The arithmetic and decisions around the memory bandwidth measurement, against hand-computed cases.

The measurement itself runs in tests/integration/test_node_bandwidth.py."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils import memory_bandwidth as mb
from ansible_collections.aiplatform.ollama.plugins.module_utils import node_profile

MIB = 1024 * 1024


@pytest.mark.parametrize("text,expected", [
    ("32768K", 32 * MIB), ("1M", MIB), ("2G", 2048 * MIB), ("512", 512), ("48K\n", 48 * 1024), ("1m", MIB),
])
def test_parse_cache_size(text, expected):
    assert mb.parse_cache_size(text) == expected


@pytest.mark.parametrize("text", ["", "big", "12T", "K"])
def test_parse_cache_size_names_what_it_got(text):
    with pytest.raises(mb.BandwidthError, match=f"cache size {text!r} is not a number of bytes, K, M or G"):
        mb.parse_cache_size(text)


def _cache(root, cpu, index, level, kind, size, shared):
    path = os.path.join(root, f"sys/devices/system/cpu/cpu{cpu}/cache/index{index}")
    os.makedirs(path)
    for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
        with open(os.path.join(path, name), "w") as handle:
            handle.write(f"{value}\n")


def test_last_level_caches_count_each_shared_cache_once(tmp_path):
    # two sockets of two cores: private 1 MiB L2s, one 16 MiB L3 per socket, L1 instruction ignored
    for cpu in range(4):
        socket_cpus = "0-1" if cpu < 2 else "2-3"
        _cache(str(tmp_path), cpu, 0, 1, "Instruction", "64M", str(cpu))
        _cache(str(tmp_path), cpu, 1, 2, "Unified", "1024K", str(cpu))
        _cache(str(tmp_path), cpu, 2, 3, "Unified", "16384K", socket_cpus)
    assert mb.last_level_cache_bytes(str(tmp_path)) == 32 * MIB


def test_last_level_cache_is_zero_where_sysfs_says_nothing(tmp_path):
    assert mb.last_level_cache_bytes(str(tmp_path)) == 0


@pytest.mark.parametrize("workers,llc,expected", [
    (2, 32 * MIB, 128 * MIB),      # 256 MiB floor (4 x 32 MiB is only 128 MiB), halved
    (3, 0, 86 * MIB),              # 256 / 3 = 85.3 MiB, up to whole 2 MiB huge pages
    (64, 768 * MIB, 48 * MIB),     # two 384 MiB L3s: 4 x 768 MiB = 3 GiB over 64 workers
    (1, 100 * MIB, 400 * MIB),     # 4 x the cache beats the floor
])
def test_array_bytes(workers, llc, expected):
    assert mb.array_bytes(workers, llc) == expected


def test_array_bytes_refuses_more_than_a_quarter_of_available_memory():
    assert mb.array_bytes(2, 32 * MIB, memory_available=2048 * MIB) == 128 * MIB  # 512 MiB = a quarter: fits
    with pytest.raises(mb.BandwidthError) as err:
        mb.array_bytes(2, 32 * MIB, memory_available=2000 * MIB)
    assert str(err.value) == (
        "the measurement needs 512 MiB (2 workers x 2 arrays of 128 MiB, so that the copies exceed 256 MiB and 4 x "
        "the 32 MiB of last-level cache), but only a quarter of MemAvailable (2000 MiB) is used for it: free memory "
        "on the node, or opt out of the measurement")


def test_array_bytes_needs_a_worker():
    with pytest.raises(mb.BandwidthError, match="workers must be at least 1, got 0"):
        mb.array_bytes(0, 0)


def _profile(samples, name):
    return node_profile.build_profile(os.path.join(samples, name))


def test_workers_are_one_per_physical_core_of_the_first_numa_node(samples):
    profile = _profile(samples, "xeon-gold-6248-2s-numa-smt")  # node 0: CPUs 0-19 and their siblings 40-59
    everything = range(80)
    assert mb.worker_cpus(profile["numa_node_cpus"], profile["core_map"], everything) == list(range(20))
    # asked for more: the siblings of node 0 next, then node 1
    assert mb.worker_cpus(profile["numa_node_cpus"], profile["core_map"], everything, 22) == list(range(20)) + [40, 41]
    assert mb.worker_cpus(profile["numa_node_cpus"], profile["core_map"], everything, 41)[-1] == 20


def test_workers_follow_the_cpus_this_process_may_use(samples):
    profile = _profile(samples, "xeon-gold-6248-2s-numa-smt")
    # only node 1 allowed (a cpuset): its 20 physical cores
    allowed = set(range(20, 40)) | set(range(60, 80))
    assert mb.worker_cpus(profile["numa_node_cpus"], profile["core_map"], allowed) == list(range(20, 40))
    # one SMT sibling per core allowed on node 0: still one worker per core
    assert mb.worker_cpus(profile["numa_node_cpus"], profile["core_map"], {40, 41, 2}) == [2, 40, 41]


def test_smt_siblings_share_a_worker(samples):
    profile = _profile(samples, "ryzen7-5800x-1s-smt")  # 8 cores, CPU n and n+8 are siblings
    assert mb.worker_cpus(profile["numa_node_cpus"], profile["core_map"], range(16)) == list(range(8))


def test_too_many_workers_is_named_with_the_cpus_there_are(samples):
    profile = _profile(samples, "kvm-sapphire-rapids-2vcpu")
    with pytest.raises(mb.BandwidthError) as err:
        mb.worker_cpus(profile["numa_node_cpus"], profile["core_map"], {0, 1}, 3)
    assert str(err.value) == ("3 bandwidth workers asked for, but this process may run on 2 CPUs (0, 1): ask for "
                              "at most 2, or 0 for one per physical core")


def test_copy_rate_counts_read_and_write_between_the_first_start_and_the_last_end():
    # two workers of 100-byte arrays: 2 x 2 x 100 bytes in 1.6 - 1.0 s
    assert mb.copy_rate([(1.0, 1.5), (1.1, 1.6)], 100) == pytest.approx(400 / 0.6)
    assert mb.copy_rate([(0.0, 0.25)], 128 * MIB) == pytest.approx(2 * 128 * MIB * 4)


def test_copy_rate_refuses_an_empty_or_zero_span():
    with pytest.raises(mb.BandwidthError, match="no worker reported a copy"):
        mb.copy_rate([], 100)
    with pytest.raises(mb.BandwidthError, match="the copies took 0.0 s"):
        mb.copy_rate([(2.0, 2.0)], 100)


def test_summary_reports_the_best_and_the_median():
    odd = mb.summarize([1e9, 3.5e9, 2e9], 2, [0, 1], 128 * MIB, True)
    assert (odd["bytes_per_s"], odd["gb_per_s"], odd["median_gb_per_s"]) == (3_500_000_000, 3.5, 2.0)
    assert (odd["repetitions"], odd["bytes_per_repetition"], odd["method"]) == (3, 512 * MIB, mb.METHOD)
    even = mb.summarize([1e9, 4e9, 2e9, 3e9], 1, [5], MIB, False)
    assert (even["gb_per_s"], even["median_gb_per_s"], even["cpus"], even["huge_pages"]) == (4.0, 2.5, [5], False)


LIVE = {"cpu_model": "AMD EPYC", "logical_cpus": 2, "numa_nodes": 1, "memory_total_bytes": 25276059648,
        "numa_node_cpus": {"0": [0, 1]}, "core_map": {"0:0": [0], "0:1": [1]}, "memory_available_bytes": 0}


def _earlier(tmp_path, **changes):
    measurement = {"bytes_per_s": 31_400_000_000, "gb_per_s": 31.4, "method": mb.METHOD,
                   "fingerprint": mb.fingerprint(LIVE), **changes}
    path = tmp_path / "ollama_node.fact"
    path.write_text(json.dumps({"cpu_model": "AMD EPYC", "memory_bandwidth": measurement}))
    return str(path), measurement


def test_fingerprint_rounds_memory_to_whole_gib():
    assert mb.fingerprint(LIVE) == {"cpu_model": "AMD EPYC", "logical_cpus": 2, "numa_nodes": 1,
                                    "memory_total_gib": 24}  # 23.54 GiB


def test_an_earlier_measurement_of_this_hardware_is_reused_without_measuring(tmp_path, monkeypatch):
    path, measurement = _earlier(tmp_path)
    monkeypatch.setattr(mb, "measure", lambda *args, **kwargs: pytest.fail("measured although reusable"))
    found, status = mb.node_bandwidth(LIVE, True, facts_file=path)
    assert found == measurement
    assert status == {"source": "reused", "reason": f"measured earlier, read from {path}", "seconds": 0.0}


@pytest.mark.parametrize("changes,reason", [
    ({"method": "stream-copy-threads-v0"}, "holds a measurement by method 'stream-copy-threads-v0', not " + mb.METHOD),
    ({"fingerprint": {"cpu_model": "Other"}}, "holds a measurement of other hardware ({'cpu_model': 'Other'})"),
    ({"bytes_per_s": 0}, "holds no measurement"),
])
def test_an_earlier_measurement_that_does_not_fit_is_not_reused(tmp_path, changes, reason):
    path, _measurement = _earlier(tmp_path, **changes)
    assert mb.earlier_measurement(path, LIVE) == (None, f"{path} {reason}")


def test_a_missing_or_broken_facts_file_means_measuring(tmp_path):
    missing = str(tmp_path / "absent.fact")
    assert mb.earlier_measurement(missing, LIVE) == (None, f"{missing} does not exist yet")
    broken = tmp_path / "broken.fact"
    broken.write_text("{not json")
    found, reason = mb.earlier_measurement(str(broken), LIVE)
    assert found is None and reason.startswith(f"{broken} cannot be read as JSON (")


def test_turned_off_measures_nothing(monkeypatch):
    monkeypatch.setattr(mb, "measure", lambda *args, **kwargs: pytest.fail("measured although turned off"))
    assert mb.node_bandwidth(LIVE, False) == (None, {"source": "skipped", "reason": "measurement turned off",
                                                     "seconds": 0.0})


def test_a_measurement_that_cannot_run_is_a_status_not_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(mb, "measure", lambda *args, **kwargs: pytest.fail("measured without the memory"))
    monkeypatch.setattr(mb, "_allowed_cpus", lambda profile: {0, 1})
    tight = dict(LIVE, memory_available_bytes=512 * MIB)
    found, status = mb.node_bandwidth(tight, True, root=str(tmp_path))
    assert found is None and status["source"] == "failed"
    assert status["reason"].startswith("the measurement needs 512 MiB (2 workers x 2 arrays of 128 MiB")
