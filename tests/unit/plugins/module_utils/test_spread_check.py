"""inference_check's replica spread check from the shapes the role's reads register: k8s_info's pods,
k8s_log loops before (items: pod objects) and after (items: pod names), with skipped and failed items."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.replica_spread_check import FilterModule
from ansible_collections.aiplatform.ollama.plugins.module_utils.spread_check import ready_pods, spread_check

SELECTOR = ["app.kubernetes.io/name=ollama"]
CHAT = '[GIN] 2026/12/04 - 20:31:02 | 200 |  1.234567s |     10.244.0.7 | POST     "/api/chat"\n'


def pod(name, ready=True, terminating=False):
    metadata = {"name": name, **({"deletionTimestamp": "2026-12-04T20:00:00Z"} if terminating else {})}
    return {"metadata": metadata,
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


PODS = {"resources": [pod("ollama-a"), pod("ollama-b"), pod("ollama-c", ready=False)]}


def before_loop(*entries):
    """k8s_log loop results over pod objects: (name, log) read, (name, None) failed, name alone skipped."""
    results = []
    for entry in entries:
        if isinstance(entry, str):
            results.append({"item": pod(entry, ready=False), "skipped": True, "changed": False})
        elif entry[1] is None:
            results.append({"item": pod(entry[0]), "failed": True, "msg": f"pods \"{entry[0]}\" not found"})
        else:
            results.append({"item": pod(entry[0]), "log": entry[1], "changed": False})
    return {"results": results, "changed": False}


def after_loop(*entries):
    return {"results": [{"item": name, "log": log} if log is not None else {"item": name, "msg": "forbidden"}
                        for name, log in entries]}


def check(pods=PODS, before=None, after=None, **kwargs):
    return spread_check(pods, before, after, namespace="ollama", selector=SELECTOR, **kwargs)


def test_ready_pods_leave_out_the_unready_and_the_terminating():
    pods = {"resources": [pod("a"), pod("b", ready=False), pod("c", terminating=True), {"metadata": {"name": "d"}}]}
    assert ready_pods(pods) == ["a"]
    assert ready_pods(None) == [] and ready_pods({"msg": "unreachable"}) == []


def test_before_the_requests_the_pods_to_read_and_the_requests_to_send():
    result = check(before=before_loop(("ollama-a", "x"), ("ollama-b", "y"), "ollama-c"), concurrency=2)
    assert result["ready"] == ["ollama-a", "ollama-b"]
    assert result["logs_before"] == [{"name": "ollama-a", "log": "x"}, {"name": "ollama-b", "log": "y"}]
    assert result["requests_to_send"] == 16  # 8 per replica with two replicas
    assert (result["spread"], result["report"], result["ok"]) == (None, None, True)


def test_after_the_requests_the_spread_and_its_report():
    result = check(before=before_loop(("ollama-a", ""), ("ollama-b", "")),
                   after=after_loop(("ollama-a", CHAT * 9), ("ollama-b", CHAT * 7)))
    assert result["ok"] is True
    assert result["report"] == result["spread"]["summary"]
    assert result["report"].startswith("16 /api/chat requests over 2 pods: ollama-a 9 (56 %); ollama-b 7 (44 %)")


def test_an_idle_replica_is_not_ok():
    result = check(before=before_loop(("ollama-a", ""), ("ollama-b", "")),
                   after=after_loop(("ollama-a", CHAT * 16), ("ollama-b", "")))
    assert result["ok"] is False
    assert result["spread"]["idle"] == ["ollama-b"]


def test_a_log_read_before_but_not_after_is_counted_out_and_named():
    result = check(before=before_loop(("ollama-a", ""), ("ollama-b", ""), ("ollama-d", None)),
                   after=after_loop(("ollama-a", CHAT * 2), ("ollama-b", None)))
    assert [p["name"] for p in result["spread"]["pods"]] == ["ollama-a"]
    assert result["report"].endswith(
        "; not counted, their log could not be read: ollama-d: pods \"ollama-d\" not found; ollama-b: forbidden "
        "(a pod replaced during the requests cannot be read; otherwise grant the kubeconfig user get on pods/log "
        "in namespace ollama, or set inference_check_spread to false)")


@pytest.mark.parametrize(("kwargs", "report"), [
    ({"pods": {"msg": "Failed to load kubeconfig."}, "kubeconfig": "/etc/k.yaml", "context": "prod"},
     "not judged: the pods could not be listed in namespace ollama with kubeconfig /etc/k.yaml, context prod: "
     "Failed to load kubeconfig. Fix: point inference_check_kubeconfig / inference_check_kube_context at the "
     "cluster, or set inference_check_spread to false"),
    ({"pods": None},
     "not judged: the pods could not be listed in namespace ollama with the default kubeconfig (KUBECONFIG or "
     "~/.kube/config): no answer. Fix: point inference_check_kubeconfig / inference_check_kube_context at the "
     "cluster, or set inference_check_spread to false"),
    ({"before": before_loop("ollama-c")},
     "not judged: no Ready pod with labels app.kubernetes.io/name=ollama in namespace ollama. Fix: "
     "inference_check_namespace and inference_check_pod_selector name the Ollama server pods"),
    ({"before": before_loop(("ollama-a", None))},
     "not judged: the log of no Ready pod could be read: ollama-a: pods \"ollama-a\" not found (a pod replaced "
     "during the requests cannot be read; otherwise grant the kubeconfig user get on pods/log in namespace ollama, "
     "or set inference_check_spread to false)"),
])
def test_each_reason_a_spread_is_not_judged(kwargs, report):
    kwargs.setdefault("before", None)
    result = check(after=after_loop(), **kwargs)
    assert (result["report"], result["ok"]) == (report, True)


def test_the_filter_names_itself_on_bad_input():
    replica_spread_check = FilterModule().filters()["replica_spread_check"]
    with pytest.raises(AnsibleFilterError, match="replica_spread_check: requests_per_replica is 0"):
        replica_spread_check(PODS, requests_per_replica=0, namespace="ollama", selector=SELECTOR)
