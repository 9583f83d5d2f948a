"""The preflight's judgement by hand: each expected figure is worked out beside it."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.preflight_findings import FilterModule, preflight_findings
from ansible_collections.aiplatform.ollama.plugins.module_utils.preflight import PreflightError, check, whole_gi
from ansible_collections.aiplatform.ollama.plugins.module_utils.sizing import memory_needed

GiB = 1024**3

# a model whose terms are easy to add up: no vocabulary or feed-forward to speak of
SMALL = {
    "name": "small:1b", "size": 3 * GiB, "block_count": 1, "head_count_kv": 1, "key_length": 1, "value_length": 1,
    "embedding_length": 1, "feed_forward_length": 1, "vocab_size": 1, "context_length": 4096,
    "weights_bytes": 3 * GiB,
}


def node(name, memory="64Gi", cpu="8", bandwidth=None, unschedulable=False):
    annotations = {"node.aiplatform.io/memory-bandwidth": str(bandwidth)} if bandwidth else {}
    return {"metadata": {"name": name, "annotations": annotations}, "spec": {"unschedulable": unschedulable},
            "status": {"allocatable": {"memory": memory, "cpu": cpu}}}


def by_check(result):
    return {(f["check"], f["subject"]): f for f in result["findings"]}


def test_memory_needs_the_sizing_plus_headroom():
    total = memory_needed(SMALL)["total_bytes"]  # 3 GiB + the 80 MiB runtime base + a few bytes
    result = check([SMALL], memory_limit="4Gi", storage_size="10Gi", cpu_limit="1")
    finding = by_check(result)[("memory", "small:1b")]
    # 10 % on top of the sizing's total, rounded up to a byte
    assert finding["need"] == -(-total * 110 // 100)
    assert finding["ok"] and finding["have"] == 4 * GiB and finding["shortfall"] == 0
    assert result["ok"] and result["failures"] == []


def test_a_short_memory_limit_names_every_number_and_the_fix():
    result = check([SMALL], memory_limit="3Gi", memory_request="2Gi")
    finding = by_check(result)[("memory", "small:1b")]
    assert not result["ok"] and not finding["ok"]
    assert finding["shortfall"] == finding["need"] - 3 * GiB > 0
    message = finding["message"]
    assert "small:1b needs 3.4 GiB of memory: 3.0 GiB weights" in message
    assert "ollama_flux_memory_limit is 3Gi (3.0 GiB), 0.4 GiB short" in message
    assert "set ollama_flux_memory_limit and ollama_flux_memory_request to 4Gi or more" in message
    assert result["failures"] == [message]
    assert result["report"][0] == "FAILED: " + message


def test_headroom_is_the_callers():
    exact = memory_needed(SMALL)["total_bytes"]
    assert check([SMALL], memory_limit=exact, headroom_pct=0)["ok"]
    assert not check([SMALL], memory_limit=exact, headroom_pct=1)["ok"]


def test_storage_counts_the_largest_model_twice():
    other = dict(SMALL, name="other:7b", size=5 * GiB)
    # 3 + 5 GiB stored, and the 5 GiB one again while it is downloaded beside itself: 13 GiB
    finding = by_check(check([SMALL, other], storage_size="12Gi"))[("storage", "claim")]
    assert not finding["ok"] and finding["need"] == 13 * GiB and finding["shortfall"] == GiB
    assert "set ollama_flux_storage_size to 13Gi or more" in finding["message"]
    assert by_check(check([SMALL, other], storage_size="13Gi"))[("storage", "claim")]["ok"]


def test_unknown_resources_are_not_checked():
    result = check([SMALL])
    findings = by_check(result)
    assert result["ok"] and ("cpu", "limit") not in findings and ("nodes", "cluster") not in findings
    assert "no memory limit is set" in findings[("memory", "small:1b")]["message"]
    assert "not checked" in findings[("storage", "claim")]["message"]


@pytest.mark.parametrize("cpu,ok", [("500m", False), ("999m", False), ("1", True), ("1000m", True), (2.5, True)])
def test_cpu_limit_must_hold_a_whole_core(cpu, ok):
    finding = by_check(check([SMALL], cpu_limit=cpu))[("cpu", "limit")]
    assert finding["ok"] is ok
    if not ok:
        assert "less than one core" in finding["message"] and "1000m or more" in finding["message"]


def test_nodes_need_room_for_the_requests_and_the_model():
    nodes = [node("small", memory="2Gi"), node("big", memory="8Gi", cpu="4"), node("cordoned", unschedulable=True)]
    finding = by_check(check([SMALL], memory_request="3Gi", cpu_request="500m", nodes=nodes))[("nodes", "cluster")]
    assert finding["ok"] and finding["message"].startswith("1 of 2 schedulable node(s) can run small:1b: big")

    finding = by_check(check([SMALL], cpu_request="5", nodes=nodes))[("nodes", "cluster")]
    assert not finding["ok"]
    assert "ollama_flux_cpu_request 5" in finding["message"] and "big (8.0 GiB, 4000m CPU)" in finding["message"]


def test_no_matching_node_fails_and_says_so():
    finding = by_check(check([SMALL], nodes=[]))[("nodes", "cluster")]
    assert not finding["ok"] and "no schedulable node matches" in finding["message"]
    finding = by_check(check([SMALL], nodes=[node("cordoned", unschedulable=True)]))[("nodes", "cluster")]
    assert not finding["ok"] and "nodes seen: cordoned" in finding["message"]


def test_measured_bandwidth_gives_a_decode_estimate():
    # 20 GB/s x 0.65 / 3 GiB read per token = 4.04 tokens/s
    result = check([SMALL], nodes=[node("fast", bandwidth=20e9), node("unmeasured")])
    (estimate,) = result["decode_estimates"]
    assert estimate["node"] == "fast" and estimate["tokens_per_s"] == round(20e9 * 0.65 / (3 * GiB), 2) == 4.04
    assert result["report"][-1].startswith("estimate: small:1b on fast decodes about 4.04 tokens/s")


def test_variables_name_the_inventory():
    result = check([SMALL], memory_limit="1Gi", variables={"memory_limit": "my_limit"})
    assert "my_limit is 1Gi" in result["failures"][0]


@pytest.mark.parametrize("kwargs,expected", [
    ({"memory_limit": "4GB"}, "ollama_flux_memory_limit: '4GB' is not a Kubernetes memory quantity"),
    ({"storage_size": "10 Gi"}, "ollama_flux_storage_size: '10 Gi' is not"),
    ({"cpu_limit": "two"}, "ollama_flux_cpu_limit: 'two' is not a Kubernetes CPU quantity; write e.g. 500m"),
    ({"headroom_pct": -5}, "preflight_memory_headroom_pct must not be negative"),
    ({"headroom_pct": "lots"}, "preflight_memory_headroom_pct must be a number"),
    ({"kv_cache_type": "q5"}, "small:1b: kv_cache_type 'q5' is not one Ollama accepts"),
    ({"nodes": [node("odd", memory="lots")]}, "node odd reports an allocatable quantity that cannot be read"),
])
def test_bad_input_names_the_variable(kwargs, expected):
    with pytest.raises(PreflightError, match=None) as err:
        check([SMALL], **kwargs)
    assert expected in str(err.value)


def test_models_must_be_model_info_results():
    with pytest.raises(PreflightError, match="model_cache_models: no model to check"):
        check([])
    with pytest.raises(PreflightError, match="result of aiplatform.ollama.ollama_model_info"):
        check([{"weights_bytes": 1}])
    with pytest.raises(PreflightError, match="small:1b: the model facts have no block_count"):
        check([{"name": "small:1b", "weights_bytes": 1}])


def test_whole_gi_rounds_up():
    assert whole_gi(GiB) == "1Gi" and whole_gi(GiB + 1) == "2Gi" and whole_gi(0) == "1Gi"


def test_filter_wraps_errors_and_is_registered():
    assert FilterModule().filters()["preflight_findings"] is preflight_findings
    assert preflight_findings([SMALL], memory_limit="4Gi")["ok"]
    with pytest.raises(AnsibleFilterError, match="^preflight_findings: ollama_flux_memory_limit"):
        preflight_findings([SMALL], memory_limit="4GB")


def pod(node_name, memory, cpu="0", labels=None, phase="Running"):
    requests = {"memory": memory, "cpu": cpu}
    return {"metadata": {"name": f"p-{node_name}", "labels": labels or {}}, "status": {"phase": phase},
            "spec": {"nodeName": node_name, "containers": [{"resources": {"requests": requests}}]}}


OWN = {"app.kubernetes.io/name": "ollama", "app.kubernetes.io/instance": "ollama"}


def test_replicas_count_what_the_other_pods_leave():
    # each Ollama pod takes its 8Gi request (more than small:1b's need); node a has 20Gi, 5Gi of it taken by
    # another pod: 15 // 8 = 1; node b has 20Gi, only our own pod on it (replaced, so not counted): 2
    nodes = [node("a", memory="20Gi"), node("b", memory="20Gi")]
    pods = [pod("a", "5Gi"), pod("b", "8Gi", labels=OWN), pod("a", "4Gi", phase="Succeeded")]
    spread = check([SMALL], memory_request="8Gi", nodes=nodes, pods=pods, own_labels=OWN, replicas=2,
                   access_modes=["ReadOnlyMany"])
    finding = by_check(spread)[("replicas", "cluster")]
    assert spread["pods_that_fit"] == 3 and finding["ok"]
    assert "room for a surge pod" in finding["message"] and "a: 1, b: 2" in finding["message"]

    # ReadWriteOnce: one node must hold every replica; the best holds 2
    one = check([SMALL], memory_request="8Gi", nodes=nodes, pods=pods, own_labels=OWN, replicas=3,
                access_modes=["ReadWriteOnce"])
    finding = by_check(one)[("replicas", "cluster")]
    assert one["pods_that_fit"] == 2 and not finding["ok"] and not one["ok"]
    assert "3 replica(s) x 8.0 GiB" in finding["message"] and "1 short" in finding["message"]
    assert "lower ollama_flux_replicas to 2" in finding["message"]
    assert "ReadOnlyMany or ReadWriteMany" in finding["message"]


def test_replicas_fit_exactly_leaves_no_surge_room():
    result = check([SMALL], memory_request="8Gi", cpu_request="2", nodes=[node("a", memory="64Gi", cpu="4")],
                   replicas=2)
    # CPU bounds it: 4 cores / 2 = 2 pods, though memory would hold 8
    finding = by_check(result)[("replicas", "cluster")]
    assert result["pods_that_fit"] == 2 and finding["ok"] and "no room for a surge pod" in finding["message"]


def test_replicas_are_not_counted_without_nodes():
    result = check([SMALL], memory_request="8Gi", replicas=5)
    assert result["pods_that_fit"] is None and ("replicas", "cluster") not in by_check(result)


@pytest.mark.parametrize("replicas", [0, -1, "two", True])
def test_bad_replicas_are_refused(replicas):
    with pytest.raises(PreflightError, match="ollama_flux_replicas must be a whole number of at least 1"):
        check([SMALL], replicas=replicas)


def test_bad_access_modes_are_refused():
    with pytest.raises(PreflightError, match="ollama_flux_pvc_access_modes is .*ReadWriteSometimes"):
        check([SMALL], access_modes=["ReadWriteSometimes"])
