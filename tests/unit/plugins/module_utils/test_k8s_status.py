"""k8s_status.explain: which cause a failed wait reports, and that the report keeps every part apart.

The objects are shaped as the API server returns them; the cluster tests (tests/integration/cluster)
check the same function on what real controllers produce.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.go_duration_seconds import go_duration_seconds
from ansible_collections.aiplatform.ollama.plugins.filter.k8s_explain import k8s_explain
from ansible_collections.aiplatform.ollama.plugins.filter.k8s_explain_evidence import k8s_explain_evidence
from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_status import explain


def event(reason, message, kind="Pod", name="ollama-abc", when="2026-11-29T10:00:00Z", type_="Warning", **extra):
    return {
        "type": type_,
        "reason": reason,
        "message": message,
        "lastTimestamp": when,
        "involvedObject": {"kind": kind, "name": name, "namespace": "ollama"},
        "metadata": {"creationTimestamp": when},
        **extra,
    }


def pod(phase="Running", statuses=(), name="ollama-abc"):
    return {
        "metadata": {"name": name, "namespace": "ollama"},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": phase, "containerStatuses": list(statuses)},
    }


RELEASE_TIMEOUT = {
    "metadata": {"name": "ollama", "namespace": "flux-system", "generation": 2},
    "status": {
        "observedGeneration": 2,
        "upgradeFailures": 4,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "UpgradeFailed",
                "message": "Helm upgrade failed for release ollama/ollama: context deadline exceeded",
            },
            {
                "type": "Stalled",
                "status": "True",
                "reason": "RetriesExceeded",
                "message": "Failed to upgrade after 4 attempt(s)",
            },
        ],
    },
}


def test_scheduler_event_explains_a_release_timeout_even_without_lastTimestamp():
    # the scheduler writes events.k8s.io events: core/v1 shows eventTime and no lastTimestamp
    scheduling = event(
        "FailedScheduling",
        "0/3 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
        when=None,
        eventTime="2026-11-29T10:00:05.000000Z",
    )
    noise = [
        event("ScalingReplicaSet", "Scaled up", kind="Deployment", type_="Normal", when=f"2026-11-29T10:00:{s:02d}Z")
        for s in range(10, 50)
    ]
    result = explain(release=RELEASE_TIMEOUT, pods=[pod("Pending")], events=[scheduling, *noise])
    assert result["cause"] == "unschedulable"
    assert "didn't match Pod's node affinity/selector" in result["reason"]
    assert result["evidence"][0].startswith("2026-11-29T10:00:05")


def test_claim_pending_outranks_the_scheduling_it_causes():
    claim = {
        "metadata": {"name": "ollama-models", "namespace": "ollama"},
        "spec": {"storageClassName": "fast"},
        "status": {"phase": "Pending"},
    }
    events = [
        event("FailedScheduling", "pod has unbound immediate PersistentVolumeClaims"),
        event(
            "ProvisioningFailed",
            'storageclass.storage.k8s.io "fast" not found',
            kind="PersistentVolumeClaim",
            name="ollama-models",
        ),
    ]
    result = explain(pods=[pod("Pending")], claims=[claim], events=events)
    assert result["cause"] == "claim_pending"
    assert result["reason"] == 'claim ollama/ollama-models is Pending: storageclass.storage.k8s.io "fast" not found'


def test_oom_killed_last_state_is_named_with_restarts():
    status = {
        "name": "ollama",
        "restartCount": 3,
        "ready": False,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    }
    result = explain(release=RELEASE_TIMEOUT, pods=[pod(statuses=[status])])
    assert result["cause"] == "oom_killed"
    assert "OOMKilled (restarts 3)" in result["reason"]


def test_failed_seed_container_outranks_the_job_condition_and_logs_are_reported():
    status = {
        "name": "seed",
        "restartCount": 0,
        "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "pull failed: model not found"}},
    }
    job = {
        "metadata": {"name": "seed-1", "namespace": "ollama"},
        "status": {
            "failed": 3,
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ],
        },
    }
    result = explain(job=job, pods=[pod("Failed", [status], name="seed-1-x")], logs={"seed-1-x": ["line 1", "line 2"]})
    assert result["cause"] == "container_failed"
    assert "exited with code 1 (Error): pull failed: model not found" in result["reason"]
    report = result["report"]
    assert report.index("== Job ollama/seed-1 (active 0, succeeded 0, failed 3) ==") < report.index("== Pods ==")
    assert report[-3:] == ["== log of seed-1-x, last 40 lines ==", "line 1", "line 2"]


def test_events_before_the_run_are_ignored_unless_nothing_newer_exists():
    old = event("FailedScheduling", "old selector", when="2026-11-29T09:00:00Z")
    new = event("FailedMount", "MountVolume.SetUp failed", when="2026-11-29T10:00:00Z")
    assert explain(events=[old, new], since="2026-11-29T09:30:00Z")["cause"] == "mount_failed"
    assert explain(events=[old], since="2026-11-29T09:30:00Z")["cause"] == "unschedulable"


def test_release_condition_when_nothing_else_explains_it():
    result = explain(release=RELEASE_TIMEOUT, pods=[], events=[])
    assert result["cause"] == "release_failed"
    assert "UpgradeFailed" in result["reason"]
    assert "install failures 0, upgrade failures 4" in result["report"][1]


def test_nothing_reported_yet():
    assert explain()["cause"] == "not_ready"


def test_filter_refuses_unknown_keys_with_the_allowed_ones():
    with pytest.raises(AnsibleFilterError, match="unknown keys \\['helmrelease'\\]; use release, job"):
        k8s_explain({"helmrelease": {}})


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("500ms", 0.5), ("1.5h", 5400)]
)
def test_go_durations(text, seconds):
    assert go_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "30 m", "m", "1d", "-5m", "1h 30m"])
def test_bad_durations_name_the_value(text):
    with pytest.raises(AnsibleFilterError, match="is not a Go duration; write e.g. 90s"):
        go_duration_seconds(text)


# What the diagnose role gathered (diagnose_evidence, diagnose_job_evidence) is what a failed wait explains.
CLAIM = {"metadata": {"name": "ollama-models", "namespace": "ollama"}, "spec": {"storageClassName": "gone"},
         "status": {"phase": "Pending"}}
SEED_JOB = {"metadata": {"name": "seed-1", "namespace": "ollama"},
            "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}}


def test_a_release_wait_is_explained_from_the_release_its_pods_and_the_claim():
    evidence = {"release": RELEASE_TIMEOUT, "pods": [], "claim": CLAIM,
                "events": [event("ProvisioningFailed", 'storageclass "gone" not found', kind="PersistentVolumeClaim",
                                 name="ollama-models")]}
    result = k8s_explain_evidence(evidence)
    assert result["cause"] == "claim_pending"
    assert result["reason"] == 'claim ollama/ollama-models is Pending: storageclass "gone" not found'
    assert result["report"][0].startswith("== HelmRelease flux-system/ollama")
    # a claim the chart makes is not the release's to explain: the release's own condition is
    assert k8s_explain_evidence(evidence, claim=False)["cause"] == "release_failed"
    assert k8s_explain_evidence(evidence, claim="false")["cause"] == "release_failed"


def test_a_job_wait_is_explained_from_the_job_its_own_pods_and_their_logs():
    status = {"name": "seed", "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "no such model"}}}
    release_pod = pod("Pending", name="ollama-abc")
    release_event = event("InstallFailed", "Helm install failed", kind="HelmRelease", name="ollama")
    release_event["metadata"]["namespace"] = "flux-system"
    evidence = {"release": RELEASE_TIMEOUT, "pods": [release_pod], "claim": None, "events": [release_event]}
    job_evidence = {"job": SEED_JOB, "pods": [pod("Failed", [status], name="seed-1-x")],
                    "logs": {"seed-1-x": ["gave up"]}}

    result = k8s_explain_evidence(evidence, job="seed-1", job_evidence=job_evidence)

    assert result["cause"] == "container_failed" and "pod ollama/seed-1-x exited with code 1" in result["reason"]
    report = result["report"]
    assert report[0].startswith("== Job ollama/seed-1") and not any("HelmRelease" in line for line in report)
    # the release's pods and its Flux namespace's events are no part of the Job's story
    assert not any("ollama-abc" in line or "InstallFailed" in line for line in report)
    assert report[-2:] == ["== log of seed-1-x, last 40 lines ==", "gave up"]


def test_a_diagnosis_that_could_not_read_still_names_the_workload():
    assert k8s_explain_evidence({})["report"][0] == "== HelmRelease  (generation ?, observed ?) =="
    job = k8s_explain_evidence({}, job="seed-1", job_evidence={})
    assert job["cause"] == "not_ready" and job["report"][0] == "== Job  (active 0, succeeded 0, failed 0) =="


def test_explain_evidence_refuses_what_is_not_a_dict():
    with pytest.raises(AnsibleFilterError, match="job_evidence must be a dict, got list"):
        k8s_explain_evidence({}, job="seed-1", job_evidence=[])
