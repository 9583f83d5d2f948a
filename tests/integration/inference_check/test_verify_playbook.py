"""playbooks/verify.yml against a real Ollama: a healthy model passes, a missing one fails clearly."""

from __future__ import annotations

import re

from tests.playbook import run_playbook


def _vars(ollama, model: str, **extra) -> dict:
    # inventories/local pulls the demo model first; these tests choose for themselves
    return {"inference_check_model": model, "inference_check_ensure_model": False,
            "inference_check_endpoints": [{"name": "direct", "url": ollama.url}], **extra}


def test_verify_pulls_then_probes_and_converges(work_tree_collections, ollama, tiny_model):
    variables = _vars(ollama, tiny_model.ref, inference_check_ensure_model=True, inference_check_insecure=True)
    first = run_playbook(work_tree_collections, "verify.yml", "local", variables)
    assert first.returncode == 0, first.output[-3000:]
    assert "direct: healthy" in first.output
    assert "tok/s" in first.output
    # the concurrency check runs by default, with as many requests as the deployment serves at once (1 here)
    assert f"concurrency through direct ({ollama.url}): 1 parallel request, 0 failed: latency p50" in first.said
    second = run_playbook(work_tree_collections, "verify.yml", "local", variables)
    assert second.returncode == 0, second.output[-3000:]
    assert second.recap["changed"] == 0


def test_verify_names_endpoint_level_and_reason_for_a_missing_model(work_tree_collections, ollama, registry):
    missing = f"{registry.host}/library/never-pushed:latest"
    run = run_playbook(work_tree_collections, "verify.yml", "local", _vars(ollama, missing))
    assert run.returncode != 0
    assert run.recap["failed"] == 1
    assert f"direct ({ollama.url}) failed at level model" in run.output
    assert "never-pushed" in run.output


def test_verify_fails_at_reachable_for_a_closed_port(work_tree_collections, tiny_model):
    from tests.services.process import free_port

    closed = {"inference_check_model": tiny_model.ref, "inference_check_timeout": 3,
              "inference_check_ensure_model": False,
              "inference_check_endpoints": [{"name": "agent-gateway", "url": f"http://127.0.0.1:{free_port()}"}]}
    run = run_playbook(work_tree_collections, "verify.yml", "local", closed)
    assert run.returncode != 0
    assert "failed at level reachable" in run.output


def _gateway_vars(ollama, tiny_model, **extra) -> dict:
    # the same server twice: the concurrency check must pick the endpoint named agent-gateway
    endpoints = [{"name": "direct", "url": ollama.url}, {"name": "agent-gateway", "url": ollama.url + "/"}]
    return _vars(ollama, tiny_model.ref, inference_check_ensure_model=True, inference_check_insecure=True,
                 inference_check_endpoints=endpoints, **extra)


def test_verify_sends_parallel_requests_through_the_gateway_and_reports_them(work_tree_collections, ollama,
                                                                               tiny_model):
    variables = _gateway_vars(ollama, tiny_model, inference_check_concurrency=3,
                              inference_check_concurrency_max_tokens=16, inference_check_max_p95_seconds=600,
                              inference_check_max_ttft_p95_seconds=600, inference_check_max_failures=0)
    run = run_playbook(work_tree_collections, "verify.yml", "local", variables)
    assert run.returncode == 0, run.output[-3000:]
    report = re.search(r"concurrency through (\S+) \((\S+)\): 3 parallel requests, 0 failed: latency p50 [\d.]+ s "
                       r"/ p95 [\d.]+ s, time to first token p50 [\d.]+ s / p95 [\d.]+ s, (\d+) tokens at [\d.]+ "
                       r"tokens/s aggregate over [\d.]+ s", run.said)
    assert report, run.output[-3000:]
    assert report.group(1, 2) == ("agent-gateway", ollama.url + "/")
    assert 3 <= int(report.group(3)) <= 3 * 16

    # check mode: the earlier stages may not have provided the model yet, so nothing is sent
    check = run_playbook(work_tree_collections, "verify.yml", "local", variables, "--check")
    assert check.returncode == 0, check.output[-3000:]
    assert "concurrency through" not in check.said and "agent-gateway: healthy" in check.said

    off = run_playbook(work_tree_collections, "verify.yml", "local", {**variables, "inference_check_concurrency": 0})
    assert off.returncode == 0, off.output[-3000:]
    assert "concurrency through" not in off.said and "agent-gateway: healthy" in off.said


def test_verify_fails_with_the_measured_figures_when_a_concurrency_bound_breaks(work_tree_collections, ollama,
                                                                                tiny_model):
    variables = _gateway_vars(ollama, tiny_model, inference_check_concurrency=2,
                              inference_check_concurrency_max_tokens=8, inference_check_max_p95_seconds=0.001)
    run = run_playbook(work_tree_collections, "verify.yml", "local", variables)
    assert run.returncode != 0 and run.recap["failed"] == 1, run.output[-3000:]
    # the figures are reported before the run fails on them
    p95 = re.search(r"concurrency through agent-gateway \(\S+\): 2 parallel requests, 0 failed: latency p50 "
                    r"[\d.]+ s / p95 ([\d.]+) s", run.said)
    assert p95, run.output[-3000:]
    assert (f"Concurrency check failed for model {tiny_model.ref} through agent-gateway ({ollama.url}/): "
            in run.said), run.output[-3000:]
    assert f"latency p95 {p95.group(1)} s is above max_p95_seconds 0.001 s" in run.said


def test_verify_refuses_a_negative_concurrency_bound_naming_it(work_tree_collections, ollama, tiny_model):
    run = run_playbook(work_tree_collections, "verify.yml", "local",
                       _gateway_vars(ollama, tiny_model, inference_check_max_ttft_p95_seconds=-1))
    assert run.returncode != 0 and run.recap["failed"] == 1, run.output[-3000:]
    assert "max_ttft_p95_seconds must not be negative (got -1.0)" in run.said


def test_a_spread_that_cannot_be_judged_says_why_and_fails_nothing(work_tree_collections, ollama, tiny_model,
                                                                     tmp_path):
    # a real Ollama with no cluster around it: the pods cannot be listed with a kubeconfig that is not there
    kubeconfig = tmp_path / "no-such-kubeconfig.yaml"
    variables = _gateway_vars(ollama, tiny_model, inference_check_concurrency=2,
                              inference_check_concurrency_max_tokens=8, inference_check_spread=True,
                              inference_check_kubeconfig=str(kubeconfig), inference_check_kube_context="prod")
    run = run_playbook(work_tree_collections, "verify.yml", "local", variables)
    assert run.returncode == 0, run.output[-3000:]
    # no pod was read, so the requests are the ones asked for
    assert "concurrency through agent-gateway" in run.said and ": 2 parallel requests, 0 failed" in run.said
    report = re.search(r"replica spread through agent-gateway: not judged: the pods could not be listed in namespace "
                       rf"ollama with kubeconfig {re.escape(str(kubeconfig))}, context prod: (.+?)\. Fix: point "
                       r"inference_check_kubeconfig / inference_check_kube_context at the cluster, or set "
                       r"inference_check_spread to false", run.said)
    assert report, run.output[-3000:]
