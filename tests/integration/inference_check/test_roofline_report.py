"""inference_check reports decode speed against the memory-bandwidth roofline, with a real Ollama, and
never fails on it: a bandwidth measured here, an unknown one, a malformed one."""

from __future__ import annotations

import json
import re
import urllib.request

from tests.playbook import run_playbook

LINE = re.compile(r"direct: decode ([\d.]+) tok/s is ([\d.]+) % of the roofline ([\d.]+) tok/s \(([\d.]+) GB/s / "
                  r"([\d.]+) MB read per token\); bandwidth \"(\d+)\" from (.+?); CPU decode reaches 55-75 % of the "
                  r"roofline in published runs")


def _vars(ollama, tiny_model, **extra) -> dict:
    return {"inference_check_model": tiny_model.ref, "inference_check_ensure_model": True,
            "inference_check_insecure": True, "inference_check_level": "generate", "inference_check_concurrency": 0,
            "inference_check_endpoints": [{"name": "direct", "url": ollama.url}], **extra}


def _model_size(ollama, ref: str) -> int:
    with urllib.request.urlopen(ollama.url + "/api/tags", timeout=30) as resp:
        models = json.loads(resp.read())["models"]
    return next(m["size"] for m in models if m["name"] == ref)


def test_decode_speed_is_reported_against_the_roofline_of_a_measured_bandwidth(work_tree_collections, ollama,
                                                                                tiny_model, module_runner):
    profile = module_runner("node_profile_facts", {"measure_bandwidth": True, "bandwidth_seconds": 0,
                                                   "isa_policy": "ignore"})["ansible_facts"]["ollama_node_profile"]
    bandwidth = profile["memory_bandwidth"]["bytes_per_s"]
    run = run_playbook(work_tree_collections, "verify.yml", "local",
                       _vars(ollama, tiny_model, inference_check_memory_bandwidth=bandwidth))
    assert run.returncode == 0, run.output[-3000:]
    line = LINE.search(run.said)
    assert line, run.output[-3000:]
    measured, pct, roofline, gb_s, mb_token = map(float, line.group(1, 2, 3, 4, 5))
    assert (int(line.group(6)), line.group(7)) == (bandwidth, "inference_check_memory_bandwidth")
    size = _model_size(ollama, tiny_model.ref)  # the tiny model: shown in MB
    assert gb_s == round(bandwidth / 1e9, 1) and mb_token == round(size / 1e6, 1)
    # the figures hold together: roofline = bandwidth / model size, share = measured / roofline
    assert abs(roofline - bandwidth / size) <= 0.005 + 1e-9 * bandwidth / size
    assert abs(pct - 100 * measured / (bandwidth / size)) <= 0.05 + 1e-6 * pct
    # the probe's own decode speed is the one set against the roofline
    assert f"direct: healthy, model {tiny_model.ref} (load" in run.said
    assert re.search(rf"first token [\d.]+ s, {measured:g} tok/s\)", run.said), run.output[-3000:]


def test_an_unknown_bandwidth_is_one_line_and_no_failure(work_tree_collections, ollama, tiny_model):
    # inventories/local renders for GitOps: no cluster to read the node's annotation from
    run = run_playbook(work_tree_collections, "verify.yml", "local", _vars(ollama, tiny_model))
    assert run.returncode == 0, run.output[-3000:]
    assert ("decode roofline not reported: the memory bandwidth is unknown (ollama_flux_mode is gitops, so no "
            "cluster is read). Set inference_check_memory_bandwidth (bytes/s), or run node_tuning with "
            "node_tuning_labels_enabled.") in run.said, run.output[-3000:]
    assert not LINE.search(run.said)


def test_a_malformed_bandwidth_is_named_and_no_failure(work_tree_collections, ollama, tiny_model):
    run = run_playbook(work_tree_collections, "verify.yml", "local",
                       _vars(ollama, tiny_model, inference_check_memory_bandwidth="fast"))
    assert run.returncode == 0 and run.recap["failed"] == 0 and run.recap["ok"] > 0, run.output[-3000:]
    assert ("direct: decode roofline not reported: decode_roofline: the bandwidth must be a finite number, got "
            "'fast' (bytes per second, as node_profile_facts measures it); bandwidth \"fast\" from "
            "inference_check_memory_bandwidth") in run.said, run.output[-3000:]
    assert "FAILED" not in run.output and "rescued=0" in run.output
