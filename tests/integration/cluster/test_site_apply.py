"""site.yml in apply mode on the prod inventory, against real controllers: check mode on an empty
cluster, the first run, idempotence, an upgrade, and an upgrade that cannot become ready, then its fix.

The tests run in file order and share the release they build, as a user's successive runs would.
"""

from __future__ import annotations

from tests.integration.cluster.conftest import HELMCHART, HELMRELEASE, HELMREPOSITORY, condition, is_ready

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
    hooks = [(c.get("lifecycle") or {}).get("postStart") for c in pod_spec["containers"]]
    assert all("ollama pull" not in " ".join(h["exec"]["command"]) for h in hooks if h), "no startup pull"
    # the seeded store, read-only: nothing runs in the pod before the server, which creates nothing
    assert "initContainers" not in pod_spec
    store = next(v for v in pod_spec["volumes"] if v["name"] == "ollama-store")
    assert store["persistentVolumeClaim"]["readOnly"] is True
    assert dep["spec"]["replicas"] == 2

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
