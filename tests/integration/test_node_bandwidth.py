"""node_tuning's memory bandwidth measurement for real on this machine: through node_profile_facts (run as
the role runs it), against a numpy reference measured here, reused once recorded, skipped when turned off.

No figure is held to a speed: the measurement is checked to be a rate at all, of the size and method it
claims, and within a wide factor of an independent implementation of the same kernel."""

from __future__ import annotations

import json
import math
import os
import re

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils import memory_bandwidth
from tests.playbook import run_playbook
from tests.services.bandwidth_reference import numpy_copy_bandwidth

MIB = 1024 * 1024
# no memory system streams 20 TB/s: a bound that only a wrong formula (bytes, seconds, workers) breaks
ABSURD_BYTES_PER_S = 20e12
# the two implementations copy with the same memcpy; a factor of 4 leaves room for a busy machine
REFERENCE_FACTOR = 4


def _profile(module_runner, **args) -> dict:
    out = module_runner("node_profile_facts", {"isa_policy": "ignore", **args})
    assert not out["failed"], out
    return out["ansible_facts"]["ollama_node_profile"]


def test_measured_bandwidth_is_a_plausible_rate_near_a_numpy_reference(module_runner):
    profile = _profile(module_runner, measure_bandwidth=True, bandwidth_seconds=1.0)
    status, bandwidth = profile["memory_bandwidth_status"], profile["memory_bandwidth"]
    assert status["source"] == "measured", status
    assert bandwidth is not None

    rate = bandwidth["bytes_per_s"]
    assert math.isfinite(rate) and 0 < rate < ABSURD_BYTES_PER_S
    assert bandwidth["gb_per_s"] == round(rate / 1e9, 2)
    assert 0 < bandwidth["median_gb_per_s"] <= bandwidth["gb_per_s"]
    # one worker per physical core of the first NUMA node this process may use
    allowed = os.sched_getaffinity(0)
    node_cpus = next(set(cpus) & allowed for _node, cpus in sorted(profile["numa_node_cpus"].items())
                     if set(cpus) & allowed)
    cores = {key for key, cpus in profile["core_map"].items() if set(cpus) & node_cpus}
    assert bandwidth["workers"] == len(bandwidth["cpus"]) == len(cores)
    assert set(bandwidth["cpus"]) <= node_cpus
    # STREAM's sizes: 256 MiB of arrays at least, in whole huge pages, each copied read + write
    assert bandwidth["array_bytes"] * bandwidth["workers"] >= 256 * MIB
    assert bandwidth["array_bytes"] % (2 * MIB) == 0
    assert bandwidth["bytes_per_repetition"] == 2 * bandwidth["array_bytes"] * bandwidth["workers"]
    assert bandwidth["repetitions"] >= 10
    assert bandwidth["fingerprint"]["cpu_model"] == profile["cpu_model"]

    reference = numpy_copy_bandwidth(bandwidth["cpus"], bandwidth["array_bytes"], budget_seconds=1.0)
    ratio = rate / reference["bytes_per_s"]
    assert 1 / REFERENCE_FACTOR < ratio < REFERENCE_FACTOR, (bandwidth, reference)


def test_turned_off_nothing_is_measured(module_runner):
    profile = _profile(module_runner, measure_bandwidth=False)
    assert profile["memory_bandwidth"] is None
    assert profile["memory_bandwidth_status"] == {"source": "skipped", "reason": "measurement turned off",
                                                  "seconds": 0.0}


def test_a_recorded_measurement_of_this_machine_is_reused(module_runner, tmp_path):
    facts = tmp_path / "ollama_node.fact"
    first = _profile(module_runner, measure_bandwidth=True, bandwidth_seconds=0, bandwidth_facts_file=str(facts))
    assert first["memory_bandwidth_status"]["source"] == "measured"
    assert first["memory_bandwidth_status"]["reason"] == f"{facts} does not exist yet"
    # what the role writes into its local facts file
    facts.write_text(json.dumps({"cpu_model": first["cpu_model"], "memory_bandwidth": first["memory_bandwidth"]}))

    again = _profile(module_runner, measure_bandwidth=True, bandwidth_facts_file=str(facts))
    assert again["memory_bandwidth"] == first["memory_bandwidth"]
    assert again["memory_bandwidth_status"] == {"source": "reused", "reason": f"measured earlier, read from {facts}",
                                                "seconds": 0.0}


def test_a_worker_that_fails_is_named_with_its_error():
    # an empty anonymous mapping is refused (EINVAL): the forked worker reports why, and is reaped
    with pytest.raises(memory_bandwidth.BandwidthError) as err:
        memory_bandwidth.measure([0], 0, budget_seconds=0)
    assert str(err.value) == "bandwidth worker 0 failed: OSError: [Errno 22] Invalid argument"


REPORT = re.compile(r"memory bandwidth ([\d.]+) GB/s \(STREAM copy, best of (\d+), (\d+) worker\(s\) on CPUs "
                    r"([\d,]+); measured\)")


def test_the_role_reports_the_measurement_and_the_opt_out(work_tree_collections, tmp_path):
    # inventories/local reports only: nothing on this machine changes, and no facts file is written
    common = {"node_tuning_facts_dir": str(tmp_path / "facts.d")}
    run = run_playbook(work_tree_collections, "tune_nodes.yml", "local", common)
    assert run.returncode == 0, run.output[-3000:]
    report = REPORT.search(run.said)
    assert report, run.output[-3000:]
    assert float(report.group(1)) > 0 and int(report.group(2)) >= 10
    assert not (tmp_path / "facts.d").exists()

    off = run_playbook(work_tree_collections, "tune_nodes.yml", "local",
                       {**common, "node_tuning_measure_bandwidth": False})
    assert off.returncode == 0, off.output[-3000:]
    assert "memory bandwidth not measured (skipped: measurement turned off)" in off.said
    assert not REPORT.search(off.said)


def test_the_role_reuses_its_recorded_measurement_unless_told_to_measure_again(work_tree_collections, module_runner,
                                                                               tmp_path):
    recorded = _profile(module_runner, measure_bandwidth=True, bandwidth_seconds=0)["memory_bandwidth"]
    facts_dir = tmp_path / "facts.d"
    facts_dir.mkdir()
    (facts_dir / "ollama_node.fact").write_text(json.dumps({"memory_bandwidth": recorded}))
    variables = {"node_tuning_facts_dir": str(facts_dir)}

    reused = run_playbook(work_tree_collections, "tune_nodes.yml", "local", variables)
    assert reused.returncode == 0, reused.output[-3000:]
    assert (f"memory bandwidth {recorded['gb_per_s']} GB/s (STREAM copy, best of {recorded['repetitions']}, "
            f"{recorded['workers']} worker(s) on CPUs {','.join(map(str, recorded['cpus']))}; reused: measured "
            f"earlier, read from {facts_dir}/ollama_node.fact)") in reused.said, reused.output[-3000:]

    again = run_playbook(work_tree_collections, "tune_nodes.yml", "local",
                         {**variables, "node_tuning_bandwidth_remeasure": True})
    assert again.returncode == 0, again.output[-3000:]
    assert REPORT.search(again.said), again.output[-3000:]
