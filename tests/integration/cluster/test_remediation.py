"""Failures a user meets for real, each on its own namespace of the session's cluster: the run fails
with the cause and its fix (not a timeout dump), a plain rerun after the inventory or the cluster is
fixed converges, and the run after that reports no change."""

from __future__ import annotations

import contextlib

from tests.integration.cluster.conftest import HELMRELEASE, condition, is_ready
from tests.services.cluster import DEFAULT_NODES, FAILING_NODE


def own_release(name: str) -> dict:
    """A release of its own: namespace, Flux objects and claim named after it."""
    return {"ollama_flux_namespace": name, "ollama_flux_flux_namespace": name, "ollama_flux_release_name": name,
            "ollama_flux_namespace_create": True, "ollama_flux_pvc_mode": "role",
            "ollama_flux_pvc_name": f"{name}-models"}


def test_install_that_cannot_schedule_is_remediated_and_recovers(cluster, run_on_cluster):
    name = "ollama-unsched"
    base = own_release(name)
    # a short Flux timeout, so the four attempts fail within minutes instead of 2 hours
    # (the preflight would refuse a selector no node matches before anything is applied)
    unmatched = {**base, "ollama_flux_timeout": "20s", "preflight_check_nodes": False,
                 "ollama_flux_node_selector": {"aiplatform.test/pool": "none"}}

    failed = run_on_cluster("deploy.yml", unmatched)

    assert failed.returncode != 0
    assert "cannot be scheduled" in failed.output, failed.output[-6000:]
    assert "Fix: no node can take the pod" in failed.output
    # the runbook diagnosis ran on its own before the run failed
    assert "RUNBOOK model pull stalls during pod startup" in failed.said
    release = cluster.get(*HELMRELEASE, name, name)
    assert release["status"]["installFailures"] == 4  # the first attempt and install.remediation.retries (3)
    assert condition(release, "Stalled").get("reason") == "RetriesExceeded"

    fixed = run_on_cluster("deploy.yml", base)
    assert fixed.returncode == 0, fixed.output[-6000:]
    assert is_ready(cluster.get(*HELMRELEASE, name, name))
    settled = run_on_cluster("deploy.yml", base)
    assert settled.returncode == 0 and settled.recap["changed"] == 0, settled.output[-6000:]


def test_claim_with_a_missing_storage_class_is_named_and_replaced_once_fixed(cluster, run_on_cluster):
    namespace = "ollama-claim"
    base = {"model_cache_namespace": namespace}
    # the Job gives up after 30s instead of 4 hours, so the run fails within a minute
    missing_class = {**base, "model_cache_storage_class": "no-such-class",
                     "model_cache_job_active_deadline_seconds": 30}

    failed = run_on_cluster("seed_models.yml", missing_class)

    assert failed.returncode != 0
    assert f"claim {namespace}/ollama-models is Pending" in failed.output, failed.output[-6000:]
    assert 'storageclass.storage.k8s.io "no-such-class" not found' in failed.output
    assert "Fix: the claim cannot bind" in failed.output
    assert "RUNBOOK PersistentVolumeClaim stuck in Pending" in failed.said

    # the runbook, judged on its own: the same cause, as a verdict
    diagnosed = run_on_cluster("diagnose.yml", {"diagnose_namespace": namespace, "diagnose_endpoints": []})
    assert diagnosed.returncode != 0
    said = diagnosed.said
    assert "RUNBOOK PersistentVolumeClaim stuck in Pending" in said, diagnosed.output[-6000:]
    # the only class is the real node's (tests/services/real_node.py)
    assert "its storage class 'no-such-class' does not exist (the cluster has aiplatform-real-node-local)" in said
    assert "fix: set model_cache_storage_class to an existing class" in said

    # check mode says what the fix would do, and does nothing (the claim's class is immutable)
    checked = run_on_cluster("seed_models.yml", base, "--check", "--diff")
    assert checked.returncode == 0, checked.output[-6000:]
    assert f"would create PersistentVolumeClaim {namespace}/ollama-models" in checked.output
    claim = cluster.get("v1", "PersistentVolumeClaim", "ollama-models", namespace)
    assert claim["spec"]["storageClassName"] == "no-such-class"

    fixed = run_on_cluster("seed_models.yml", base)
    assert fixed.returncode == 0, fixed.output[-6000:]
    claim = cluster.get("v1", "PersistentVolumeClaim", "ollama-models", namespace)
    assert claim["status"]["phase"] == "Bound" and not claim["spec"].get("storageClassName")
    settled = run_on_cluster("seed_models.yml", base)
    assert settled.returncode == 0 and settled.recap["changed"] == 0, settled.output[-6000:]


@contextlib.contextmanager
def only_the_failing_node_schedulable(cluster):
    good = [node.name for node in DEFAULT_NODES if node.name != FAILING_NODE]
    try:
        for node in good:
            cluster.cordon(node)
        cluster.cordon(FAILING_NODE, False)
        yield
    finally:
        cluster.cordon(FAILING_NODE)
        for node in good:
            cluster.cordon(node, False)


def test_failed_seed_job_is_named_and_does_not_block_the_rerun(cluster, run_on_cluster):
    namespace = "ollama-seedfail"
    base = {"model_cache_namespace": namespace}

    with only_the_failing_node_schedulable(cluster):
        failed = run_on_cluster("seed_models.yml", base)

    assert failed.returncode != 0
    assert "exited with code 1" in failed.output, failed.output[-6000:]
    assert "failed by the test cluster's failing node" in failed.output
    assert "Fix: read the pod's log above" in failed.output or "Fix: read the pods' logs above" in failed.output
    jobs = cluster.get("batch/v1", "Job", namespace=namespace)["items"]
    assert [condition(job, "Failed").get("status") for job in jobs] == ["True"]
    job_name = jobs[0]["metadata"]["name"]

    # the node is cordoned again; nothing in the inventory changed, so the Job keeps its name
    fixed = run_on_cluster("seed_models.yml", base)
    assert fixed.returncode == 0, fixed.output[-6000:]
    jobs = cluster.get("batch/v1", "Job", namespace=namespace)["items"]
    assert [(job["metadata"]["name"], condition(job, "Complete").get("status")) for job in jobs] == [(job_name, "True")]
    settled = run_on_cluster("seed_models.yml", base)
    assert settled.returncode == 0 and settled.recap["changed"] == 0, settled.output[-6000:]


def test_diagnose_refuses_bad_input_by_name(run_on_cluster):
    missing = run_on_cluster("diagnose.yml", {"diagnose_namespace": "no-such-namespace"})
    assert missing.returncode != 0
    assert "namespace no-such-namespace (diagnose_namespace) does not exist in this cluster" in missing.said

    unknown = run_on_cluster("diagnose.yml", {"diagnose_runbooks": ["pvc_pending", "disk_full"]})
    assert unknown.returncode != 0
    assert "diagnose_runbooks" in unknown.output and "disk_full" in unknown.output, unknown.output[-3000:]


def test_deploy_before_the_seed_is_refused_before_anything_is_applied(cluster, run_on_cluster):
    name = "unseeded"
    run = run_on_cluster("deploy.yml", {**own_release(name), "ollama_flux_pvc_mode": "external"})

    assert run.returncode != 0
    assert f"claim {name}-models does not exist in namespace {name}" in run.said, run.output[-4000:]
    assert "run seed_models.yml first" in run.said
    assert "Apply the cluster-vars ConfigMap and the application objects" not in run.output
    assert cluster.find("v1", "Namespace", name) is None
