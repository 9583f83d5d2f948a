"""site.yml in apply mode on the prod inventory, against real controllers: check mode on an empty
cluster, the first run, idempotence, an upgrade, and an upgrade that cannot become ready, then its fix.

The tests run in file order and share the release they build, as a user's successive runs would.
"""

from __future__ import annotations

import contextlib
import socket

import pytest

from tests.integration.cluster.conftest import HELMCHART, HELMRELEASE, HELMREPOSITORY, condition, is_ready
from tests.services.nginx import nginx
from tests.services.process import free_port

NAMESPACE = "ollama"
FLUX = "flux-system"
# after test_upgrade_changes_the_limit, every run keeps the raised limit
RAISED = {"ollama_flux_memory_limit": "56Gi"}


def deployment(cluster) -> dict:
    return cluster.get("apps/v1", "Deployment", "ollama", NAMESPACE)


def test_check_mode_on_an_empty_cluster_reports_and_changes_nothing(cluster, run_on_cluster):
    run = run_on_cluster("site.yml", {}, "--check", "--diff")

    assert run.returncode == 0, run.output[-6000:]
    assert run.recap["failed"] == 0 and run.recap["changed"] > 0
    for kind, name in [("PersistentVolumeClaim", "ollama-models"), ("Job", "ollama-model-cache-"),
                       ("NetworkPolicy", "ollama-ingress")]:
        assert f"would create {kind} {NAMESPACE}/{name}" in run.output
    assert cluster.find("v1", "Namespace", NAMESPACE) is None
    assert cluster.find(*HELMRELEASE, "ollama", FLUX) is None


def test_site_converges_on_the_seeded_claim(cluster, run_on_cluster):
    run = run_on_cluster("site.yml")
    assert run.returncode == 0, run.output[-6000:]

    claim = cluster.get("v1", "PersistentVolumeClaim", "ollama-models", NAMESPACE)
    assert claim["status"]["phase"] == "Bound"
    jobs = cluster.get("batch/v1", "Job", namespace=NAMESPACE,
                       label_selector="app.kubernetes.io/component=model-cache")["items"]
    assert [condition(job, "Complete").get("status") for job in jobs] == ["True"]
    for kind, name in [(HELMREPOSITORY, "otwld"), (HELMCHART, f"{FLUX}-ollama"), (HELMRELEASE, "ollama")]:
        obj = cluster.get(*kind, name, FLUX)
        assert is_ready(obj), (name, obj.get("status"))

    dep = deployment(cluster)
    assert dep["status"].get("availableReplicas", 0) >= 1
    pod_spec = dep["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod_spec["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["ollama-models"]
    assert all("postStart" not in (c.get("lifecycle") or {}) for c in pod_spec["containers"]), "no startup pull"
    assert [c["name"] for c in pod_spec.get("initContainers", [])] == ["align-threads"]

    svc = cluster.get("v1", "Service", "ollama", NAMESPACE)
    assert svc["spec"]["type"] == "ClusterIP"
    assert [p["port"] for p in svc["spec"]["ports"]] == [11434]
    assert cluster.find("networking.k8s.io/v1", "NetworkPolicy", "ollama-ingress", NAMESPACE) is not None

    again = run_on_cluster("site.yml")
    assert again.returncode == 0, again.output[-6000:]
    assert again.recap["changed"] == 0, again.output[-6000:]


def test_upgrade_changes_the_limit_and_keeps_the_claim(cluster, run_on_cluster):
    claim_before = cluster.get("v1", "PersistentVolumeClaim", "ollama-models", NAMESPACE)

    run = run_on_cluster("deploy.yml", RAISED)
    assert run.returncode == 0, run.output[-6000:]

    release = cluster.get(*HELMRELEASE, "ollama", FLUX)
    assert release["status"]["history"][0]["version"] == 2
    limits = deployment(cluster)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "56Gi"
    claim_after = cluster.get("v1", "PersistentVolumeClaim", "ollama-models", NAMESPACE)
    assert claim_after["metadata"]["uid"] == claim_before["metadata"]["uid"]
    assert claim_after["spec"]["volumeName"] == claim_before["spec"]["volumeName"]


def test_failed_upgrade_names_the_cause_and_a_plain_rerun_recovers(cluster, run_on_cluster):
    # a short Flux timeout, so the four attempts fail within minutes instead of 2 hours
    # the preflight would refuse a selector no node matches before anything is applied: this is
    # about Flux's remediation once one got through
    unmatched = {**RAISED, "ollama_flux_timeout": "20s", "preflight_check_nodes": False,
                 "ollama_flux_node_selector": {"aiplatform.test/pool": "no-such-pool"}}

    failed = run_on_cluster("deploy.yml", unmatched)

    assert failed.returncode != 0
    assert "cannot be scheduled" in failed.output, failed.output[-6000:]
    assert "didn't match Pod's node affinity/selector" in failed.output
    assert "Fix: no node can take the pod" in failed.output
    assert "== Events, oldest first ==" in failed.output
    release = cluster.get(*HELMRELEASE, "ollama", FLUX)
    assert release["status"]["upgradeFailures"] == 4  # the first attempt and upgrade.remediation.retries (3)
    assert condition(release, "Stalled").get("reason") == "RetriesExceeded"

    # the inventory as it was before the failed change
    fixed = run_on_cluster("deploy.yml", RAISED)
    assert fixed.returncode == 0, fixed.output[-6000:]
    assert is_ready(cluster.get(*HELMRELEASE, "ollama", FLUX))
    # the selector removed leaves no trace in the stored values, so nothing differs on the next run
    settled = run_on_cluster("deploy.yml", RAISED)
    assert settled.returncode == 0 and settled.recap["changed"] == 0, settled.output[-6000:]


def test_verify_alone_probes_the_model_clients_are_served(run_on_cluster, served_model):
    run = run_on_cluster("verify.yml")

    assert run.returncode == 0, run.output[-6000:]
    assert f"direct: healthy, model {served_model}" in run.said, run.output[-3000:]


def test_diagnose_judges_the_converged_service_healthy_in_one_line(run_on_cluster):
    # the model it probes is the served (thread-aligned) one, derived from the inventory as deploy does
    run = run_on_cluster("diagnose.yml", RAISED)

    assert run.returncode == 0, run.output[-6000:]
    said = run.said
    assert "healthy: pull_stall, oom_killed, pvc_pending, model_missing; not judged: no probe through the Agent " \
           "Gateway was configured" in said, run.output[-3000:]
    assert "RUNBOOK" not in run.output
    assert run.recap["changed"] == 0


@contextlib.contextmanager
def _silent_upstream():
    """A port that accepts connections and never answers: an upstream that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@contextlib.contextmanager
def _gateway(tmp_path, upstream_port: int):
    """A real reverse proxy (nginx) standing in for the Agent Gateway, with a short upstream timeout."""
    port = free_port()
    server = (f"    listen 127.0.0.1:{port};\n"
              "    location = /gateway-ready { return 200; }\n"
              f"    location / {{ proxy_pass http://127.0.0.1:{upstream_port}; proxy_read_timeout 2s;"
              " proxy_connect_timeout 2s; }\n")
    with nginx("agent-gateway", tmp_path, server, ready_url=f"http://127.0.0.1:{port}/gateway-ready"):
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("upstream", ["dead", "hanging"])
def test_diagnose_blames_the_gateway_when_ollama_answers_directly(cluster, run_on_cluster, ollama, tmp_path, upstream):
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(_silent_upstream()) if upstream == "hanging" else free_port()
        gateway = {"name": "agent-gateway", "url": stack.enter_context(_gateway(tmp_path, port))}
        if upstream == "hanging":
            # a token on the gateway's endpoint, as kagent's route may need: that probe runs from the
            # controller (a token has no place on a pod's command line) and stays out of verbose output
            gateway["api_key"] = "diagnose-token"
        endpoints = [{"name": "direct", "url": ollama.url}, gateway]
        run = run_on_cluster("diagnose.yml", {**RAISED, "diagnose_endpoints": endpoints, "diagnose_probe_timeout": 10},
                             "-v")

    said = run.said
    assert run.returncode != 0 and run.recap["failed"] == 1
    assert "diagnose-token" not in run.output
    assert "1 runbook(s) apply: inference requests timing out through the Agent Gateway: Ollama answers " \
           "directly but not through the gateway" in said, run.output[-3000:]
    assert ("502" if upstream == "dead" else "504") in said
    assert "Fix: check the NetworkPolicy admits the gateway's namespace" in said
    # the direct probe ran in a pod carrying the NetworkPolicy's labels (kwok runs its exec here), and
    # the pod is gone again
    assert f"evidence: probe direct {ollama.url} from pod ollama-diagnose-probe-" in said
    if upstream == "dead":
        assert f"evidence: probe agent-gateway {gateway['url']} from pod ollama-diagnose-probe-" in said
    assert not [pod for pod in cluster.get("v1", "Pod", namespace=NAMESPACE)["items"]
                if "diagnose-probe" in pod["metadata"]["name"] and not pod["metadata"].get("deletionTimestamp")]


def test_verify_diagnoses_a_failing_gateway_before_it_fails(run_on_cluster, ollama, tmp_path):
    with _gateway(tmp_path, free_port()) as gateway:
        endpoints = [{"name": "direct", "url": ollama.url}, {"name": "agent-gateway", "url": gateway}]
        run = run_on_cluster("verify.yml", {"inference_check_endpoints": endpoints})

    said = run.said
    assert run.returncode != 0 and run.recap["failed"] == 1
    assert "RUNBOOK inference requests timing out through the Agent Gateway" in said, run.output[-3000:]
    assert "cause: Ollama answers directly but not through the gateway" in said
    assert f"agent-gateway ({gateway}) failed at level" in said


def test_diagnose_names_a_model_missing_from_the_store_and_its_fix(run_on_cluster):
    run = run_on_cluster("diagnose.yml", {**RAISED, "diagnose_model": "never-seeded:latest"})

    said = run.said
    assert run.returncode != 0 and run.recap["failed"] == 1
    assert "1 runbook(s) apply: model not available after pod reschedule: never-seeded:latest is not in the " \
           "served store" in said, run.output[-3000:]
    assert "Fix: seed it (seed_models.yml)" in said
