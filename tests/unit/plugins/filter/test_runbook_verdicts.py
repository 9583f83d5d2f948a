"""runbooks.verdicts: one verdict per runbook of the service catalogue, from what a diagnosis read.

Objects are shaped as the API server and ollama_health return them; tests/integration/cluster runs
the diagnose role on the real cluster for the healthy and the Pending-claim cases.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.runbook_verdicts import runbook_verdicts
from ansible_collections.aiplatform.ollama.plugins.module_utils.replica_plan import plan

NAMES = {"namespace": "ollama", "claim": "ollama-models", "release": "ollama", "model": "qwen2.5:72b-t2"}


def pod(ready=True, statuses=(), claim="ollama-models", post_start=False, warm=False):
    hook = {"postStart": {"exec": {"command": ["/bin/sh", "-c", "while ! /bin/ollama ps; do sleep 5; done\n"
                                                                "/bin/ollama pull  qwen2.5:72b\n"]}}}
    if warm:
        hook = plan(1, ["ReadWriteOnce"], warm_model="qwen2.5:72b-t2")["lifecycle"]
    container = {"name": "ollama", **({"lifecycle": hook} if post_start or warm else {})}
    return {"metadata": {"name": "ollama-abc", "namespace": "ollama"},
            "spec": {"nodeName": "n1", "containers": [container],
                     "volumes": [{"name": "ollama-data", "persistentVolumeClaim": {"claimName": claim}}]},
            "status": {"phase": "Running", "containerStatuses": list(statuses),
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def probe(name, healthy=True, passed=("reachable", "version", "model", "generate"), failed_level=None, reason=""):
    return {"item": {"name": name, "url": f"http://{name}:11434"}, "healthy": healthy, "passed": list(passed),
            "failed_level": failed_level, "reason": reason}


HEALTHY = {
    "release": {"metadata": {"name": "ollama"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
    "pods": [pod()],
    "claim": {"metadata": {"name": "ollama-models"}, "spec": {"volumeName": "pv-1"}, "status": {"phase": "Bound"}},
    "classes": [{"metadata": {"name": "standard"}}],
    "events": [],
    "endpoints": [{"endpoints": [{"conditions": {"ready": True}}]}],
    "probes": [probe("direct"), probe("agent-gateway")],
    "names": NAMES,
}


def by_runbook(gathered):
    return {v["runbook"]: v for v in runbook_verdicts(gathered)}


def test_a_healthy_service_passes_every_runbook_in_the_catalogue_order():
    verdicts = runbook_verdicts(HEALTHY)
    assert [v["runbook"] for v in verdicts] == ["pull_stall", "oom_killed", "pvc_pending", "gateway_timeout",
                                                "model_missing"]
    assert {v["status"] for v in verdicts} == {"ok"}


def test_claim_on_a_missing_storage_class_names_the_class_and_the_variable():
    claim = {"metadata": {"name": "ollama-models"}, "spec": {"storageClassName": "fast-ssd"},
             "status": {"phase": "Pending"}}
    verdict = by_runbook({**HEALTHY, "claim": claim})["pvc_pending"]
    assert verdict["status"] == "failing"
    assert "storage class 'fast-ssd' does not exist (the cluster has standard)" in verdict["cause"]
    assert "model_cache_storage_class" in verdict["fix"]


def test_missing_claim_points_at_the_seed_playbook():
    verdict = by_runbook({**HEALTHY, "claim": None})["pvc_pending"]
    assert verdict["status"] == "failing" and "seed_models.yml" in verdict["fix"]


def test_oom_killed_container_with_restarts():
    status = {"name": "ollama", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
              "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}
    verdicts = by_runbook({**HEALTHY, "pods": [pod(ready=False, statuses=[status])]})
    assert verdicts["oom_killed"]["status"] == "failing"
    assert "OOMKilled (restarts 4)" in verdicts["oom_killed"]["cause"]
    assert "ollama_flux_memory_limit" in verdicts["oom_killed"]["fix"]


@pytest.mark.parametrize("reason", [
    # Ollama 0.18.3 when the kernel killed the runner loading the model (seen on the test cluster's real node)
    'generate: HTTP 500: {"error":"llama runner process has terminated: %!w(<nil>)"}',
    'generate: HTTP 500: {"error":"llama runner process has terminated: %!w(\\u003cnil\\u003e)"}',
    "generate: llama runner process has terminated: signal: killed",
    "generate: model runner has unexpectedly stopped, this may be due to resource limitations or an internal error",
])
def test_a_runner_killed_while_the_pod_runs_on_is_an_oom(reason):
    killed = probe("direct", healthy=False, passed=("reachable", "version", "model"), failed_level="generate",
                   reason=reason)
    verdicts = by_runbook({**HEALTHY, "probes": [killed, probe("agent-gateway")],
                           "names": {**NAMES, "memory_need": "about 180 MiB"}})
    verdict = verdicts["oom_killed"]
    assert verdict["status"] == "failing"
    assert "model runner was killed while it loaded or ran qwen2.5:72b-t2" in verdict["cause"]
    assert "pod shows no OOMKilled" in verdict["cause"]
    assert verdict["fix"] == "raise ollama_flux_memory_limit above the model's need (about 180 MiB)"
    assert verdict["evidence"] == [f"probe direct http://direct:11434: passed reachable, version, model; "
                                   f"failed at generate: {reason}"]


def test_a_gateway_passing_on_ollamas_own_failure_is_not_blamed():
    missing = dict(healthy=False, passed=("reachable", "version"), failed_level="model",
                   reason="HTTP 404: model 'never-seeded:latest' not found")
    verdicts = by_runbook({**HEALTHY, "probes": [probe("direct", **missing), probe("agent-gateway", **missing)]})
    assert verdicts["gateway_timeout"]["status"] == "unknown"
    assert "Ollama fails directly too, at the same level (model)" in verdicts["gateway_timeout"]["cause"]
    assert verdicts["model_missing"]["status"] == "failing"
    # failing earlier than Ollama does, the gateway has a fault of its own
    dead = dict(healthy=False, passed=(), failed_level="reachable", reason="HTTP 502")
    verdicts = by_runbook({**HEALTHY, "probes": [probe("direct", **missing), probe("agent-gateway", **dead)]})
    assert verdicts["gateway_timeout"]["status"] == "failing"


def test_a_runner_that_says_why_it_ended_is_no_oom():
    crashed = probe("direct", healthy=False, passed=("reachable", "version", "model"), failed_level="generate",
                    reason="generate: llama runner process has terminated: error loading model: unknown architecture")
    assert by_runbook({**HEALTHY, "probes": [crashed]})["oom_killed"]["status"] == "ok"


def test_a_startup_pull_hook_is_the_stall():
    verdict = by_runbook({**HEALTHY, "pods": [pod(post_start=True)]})["pull_stall"]
    assert verdict["status"] == "failing" and "postStart" in verdict["cause"]


def test_the_hook_that_loads_a_seeded_model_is_no_startup_pull():
    verdict = by_runbook({**HEALTHY, "pods": [pod(warm=True)]})["pull_stall"]
    assert verdict["status"] == "ok", verdict


def test_gateway_failing_while_the_service_answers():
    probes = [probe("direct"), probe("agent-gateway", healthy=False, passed=(), failed_level="reachable",
                                     reason="timed out after 30s")]
    verdict = by_runbook({**HEALTHY, "probes": probes})["gateway_timeout"]
    assert verdict["status"] == "failing"
    assert verdict["cause"] == "Ollama answers directly but not through the gateway: timed out after 30s"
    assert "ollama_flux_networkpolicy_namespaces" in verdict["fix"]


def test_no_ready_endpoint_is_the_gateway_s_problem_too():
    verdict = by_runbook({**HEALTHY, "endpoints": [{"endpoints": [{"conditions": {"ready": False}}]}]})
    assert verdict["gateway_timeout"]["status"] == "failing"
    assert "no ready endpoint" in verdict["gateway_timeout"]["cause"]


def test_without_a_gateway_probe_the_verdict_is_unknown_not_ok():
    verdict = by_runbook({**HEALTHY, "probes": [probe("direct")]})["gateway_timeout"]
    assert verdict["status"] == "unknown"


def test_model_missing_from_the_store_and_pod_off_the_claim():
    probes = [probe("direct", healthy=False, passed=("reachable", "version"), failed_level="model",
                    reason="qwen2.5:72b-t2 is not on the server")]
    assert by_runbook({**HEALTHY, "probes": probes})["model_missing"]["status"] == "failing"
    off_claim = by_runbook({**HEALTHY, "pods": [pod(claim="scratch")]})["model_missing"]
    assert off_claim["status"] == "failing" and "lost on every reschedule" in off_claim["cause"]


@pytest.mark.parametrize(("gathered", "message"), [
    ({"names": NAMES, "pvc": {}}, r"unknown keys \['pvc'\]"),
    ({"names": {"namespace": "ollama"}}, r"names lacks \['claim', 'model', 'release'\]"),
])
def test_bad_input_is_refused_by_name(gathered, message):
    with pytest.raises(AnsibleFilterError, match=message):
        runbook_verdicts(gathered)
