# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The service catalogue's five runbooks as verdicts read from the cluster and the probes.

Each runbook the on-call engineer would walk through by hand (kubectl get/describe, curl) becomes one
verdict: ok, failing or unknown, with the cause in one sentence, the evidence it rests on and the fix.
The evidence is what a diagnosis gathered: the HelmRelease, the pods, the claim and the storage classes,
the events of both namespaces, the Service's endpoints, and the inference probes (ollama_health results).
"""

from __future__ import annotations

import re

from .k8s_status import claim_warnings, condition, event_line, pod_cause, pod_line, recent_events

RUNBOOKS = (
    ("pull_stall", "model pull stalls during pod startup"),
    ("oom_killed", "OOMKilled during model loading"),
    ("pvc_pending", "PersistentVolumeClaim stuck in Pending"),
    ("gateway_timeout", "inference requests timing out through the Agent Gateway"),
    ("model_missing", "model not available after pod reschedule"),
)


def _verdict(key: str, status: str, cause: str, evidence=(), fix: str = "") -> dict:
    return {"runbook": key, "title": dict(RUNBOOKS)[key], "status": status, "cause": cause,
            "evidence": list(evidence), "fix": fix}


def _pvc(claim: dict | None, classes: list, events: list, names: dict) -> dict:
    if not claim:
        return _verdict("pvc_pending", "failing", f"claim {names['namespace']}/{names['claim']} does not exist",
                        fix="run playbooks/seed_models.yml, which creates and fills it")
    phase = (claim.get("status") or {}).get("phase", "Pending")
    wanted = (claim.get("spec") or {}).get("storageClassName") or ""
    existing = {c["metadata"]["name"] for c in classes}
    if phase == "Bound":
        return _verdict("pvc_pending", "ok", f"claim {names['claim']} is Bound to {claim['spec'].get('volumeName')}")
    about = claim_warnings(names["claim"], events)
    evidence = [event_line(e) for e in about[-3:]]
    if wanted and wanted not in existing:
        return _verdict("pvc_pending", "failing",
                        f"claim {names['claim']} is {phase}: its storage class {wanted!r} does not exist "
                        f"(the cluster has {', '.join(sorted(existing)) or 'none'})", evidence,
                        "set model_cache_storage_class to an existing class and run seed_models.yml again "
                        "(a claim that never bound is replaced)")
    detail = about[-1].get("message", "") if about else "no event explains it"
    return _verdict("pvc_pending", "failing", f"claim {names['claim']} is {phase}: {detail}", evidence,
                    "check the storage class's provisioner and free volumes (kubectl get pv,storageclass)")


# What Ollama answers when the kernel killed its model runner: the runner ended without a word of its
# own (a crash says why, e.g. "...terminated: error loading model ..."), or died while it served.
_RUNNER_KILLED = re.compile(
    r"runner process has terminated(?::\s*(?:signal: killed|%!w\((?:<nil>|\\u003cnil\\u003e)\)))?(?=[\"'}\s]|$)"
    r"|model runner has unexpectedly stopped")


def _oom(pods: list, probes: list, names: dict) -> dict:
    fix = (f"raise ollama_flux_memory_limit above the model's need ({names['memory_need']})"
           if names.get("memory_need") else "raise ollama_flux_memory_limit to the model's weights plus its KV cache")
    for pod in pods:
        found = pod_cause(pod)
        if found and found[0] == "oom_killed":
            return _verdict("oom_killed", "failing", found[1], [pod_line(pod)], fix)
    # The kernel kills the largest process of a container over its limit: the runner loading the model.
    # Where it kills only that process (cgroup v1 nodes, or a kubelet with singleProcessOOMKill) the
    # server lives on, the pod shows no OOMKilled, and only the answer to a request tells.
    killed = [p for p in probes if not p.get("healthy") and _RUNNER_KILLED.search(str(p.get("reason", "")))]
    if killed:
        return _verdict("oom_killed", "failing",
                        f"Ollama's model runner was killed while it loaded or ran {names.get('model', 'the model')}: "
                        "the container's memory limit is below what the model needs (where the kernel kills only "
                        "the runner, the pod shows no OOMKilled)", [_probe_line(p) for p in killed], fix)
    return _verdict("oom_killed", "ok", "no container of the Ollama pods was OOMKilled")


def _stall(release: dict | None, pods: list, events: list, names: dict) -> dict:
    evidence = []
    if release:
        status = release.get("status") or {}
        ready = condition(release, "Ready")
        evidence.append(f"HelmRelease Ready={ready.get('status', '?')} {ready.get('reason', '')}: "
                        f"{ready.get('message', '')} (install failures {status.get('installFailures', 0)}, "
                        f"upgrade failures {status.get('upgradeFailures', 0)})")
    if not pods:
        if release and condition(release, "Ready").get("status") == "True":
            return _verdict("pull_stall", "failing", "the HelmRelease is Ready but no Ollama pod exists", evidence,
                            "check the chart's replicaCount and the Deployment (kubectl describe deploy)")
        scheduling = [e for e in events if e.get("reason") == "FailedScheduling"]
        cause = (f"no Ollama pod is running: {scheduling[-1].get('message', '')}" if scheduling
                 else "no Ollama pod is running")
        return _verdict("pull_stall", "failing", cause, evidence + [event_line(e) for e in scheduling[-1:]],
                        "deploy it (playbooks/deploy.yml); the run names why a release is not Ready")
    for pod in pods:
        # the chart's postStart pulls (`ollama pull` in its script); the collection's own only loads a
        # model already in the store (replica_plan's warming), which is no startup pull
        post_start = [c["name"] for c in (pod.get("spec") or {}).get("containers", [])
                      if "ollama pull" in " ".join(((c.get("lifecycle") or {}).get("postStart") or {})
                                                   .get("exec", {}).get("command") or [])]
        if post_start:
            return _verdict("pull_stall", "failing", f"pod {pod['metadata']['name']} pulls its model in a postStart "
                            "hook: the container is not ready until the pull ends", [pod_line(pod)],
                            "seed the claim first (seed_models.yml) and keep ollama_flux_models_preseeded: true")
        ready = condition(pod, "Ready").get("status") == "True"
        if not ready:
            found = pod_cause(pod)
            phase = (pod.get("status") or {}).get("phase")
            cause = found[1] if found else f"pod {pod['metadata']['name']} is {phase} and not Ready"
            return _verdict("pull_stall", "failing", cause, [pod_line(pod)] + evidence,
                            "read the pod's events (kubectl describe pod); a claim that was never seeded has no "
                            "models directory to mount read-only: run seed_models.yml")
    return _verdict("pull_stall", "ok", f"{len(pods)} Ollama pod(s) Ready, no startup pull", evidence)


def _probe(probes: list, role: str) -> dict | None:
    return next((p for p in probes if p.get("name") == role), None)


def _gateway(probes: list, endpoints: list | None, names: dict) -> dict:
    """endpoints: the Service's EndpointSlices, or None where they were not read."""
    ready = sum(1 for slice_ in endpoints or [] for ep in slice_.get("endpoints") or []
                if (ep.get("conditions") or {}).get("ready"))
    if endpoints is not None and not ready:
        return _verdict("gateway_timeout", "failing", f"Service {names['release']} has no ready endpoint: the "
                        "gateway has nothing to send requests to", [f"EndpointSlices: {len(endpoints)}"],
                        "make the Ollama pod Ready first (see the startup verdict)")
    direct, gateway = _probe(probes, "direct"), _probe(probes, "agent-gateway")
    if gateway is None:
        return _verdict("gateway_timeout", "unknown", "no probe through the Agent Gateway was configured",
                        fix="add an endpoint named agent-gateway to diagnose_endpoints")
    if gateway.get("healthy"):
        return _verdict("gateway_timeout", "ok", "inference answers through the gateway", [_probe_line(gateway)])
    if direct and direct.get("healthy"):
        return _verdict("gateway_timeout", "failing", "Ollama answers directly but not through the gateway: "
                        f"{gateway.get('reason', '')}", [_probe_line(direct), _probe_line(gateway)],
                        "check the NetworkPolicy admits the gateway's namespace "
                        "(ollama_flux_networkpolicy_namespaces) and the gateway's route and timeout")
    if direct and gateway.get("failed_level") == direct.get("failed_level"):
        # the gateway passes on Ollama's own failure: nothing to judge about the gateway until that is fixed
        return _verdict("gateway_timeout", "unknown", f"Ollama fails directly too, at the same level "
                        f"({direct.get('failed_level')}): the gateway passes that failure on",
                        [_probe_line(p) for p in (direct, gateway)], "fix the direct path first (the other verdicts)")
    return _verdict("gateway_timeout", "failing", f"inference fails through the gateway: {gateway.get('reason', '')}",
                    [_probe_line(p) for p in (direct, gateway) if p], "fix the direct path first (the other verdicts)")


def _model(probes: list, pods: list, names: dict) -> dict:
    for pod in pods:
        volumes = (pod.get("spec") or {}).get("volumes") or []
        claims = [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v]
        if names["claim"] not in claims:
            return _verdict("model_missing", "failing", f"pod {pod['metadata']['name']} does not mount the claim "
                            f"{names['claim']}: its models are lost on every reschedule", [pod_line(pod)],
                            "deploy with ollama_flux_pvc_mode: external (or role) so the chart mounts the claim")
    direct = _probe(probes, "direct") or next(iter(probes), None)
    if direct is None:
        return _verdict("model_missing", "unknown", "no inference probe was configured",
                        fix="set diagnose_endpoints to the Service's URL")
    if "model" in (direct.get("passed") or []):
        return _verdict("model_missing", "ok", f"{names['model']} is served", [_probe_line(direct)])
    if direct.get("failed_level") == "model":
        return _verdict("model_missing", "failing", f"{names['model']} is not in the served store: "
                        f"{direct.get('reason', '')}", [_probe_line(direct)],
                        "seed it (seed_models.yml writes the served model beside the base one); the pods read "
                        "the store on every request, so no restart is needed")
    return _verdict("model_missing", "unknown", f"Ollama did not answer: {direct.get('reason', '')}",
                    [_probe_line(direct)], "see the other verdicts")


def _probe_line(probe: dict) -> str:
    passed = probe.get("passed") or []
    outcome = "healthy" if probe.get("healthy") else f"failed at {probe.get('failed_level')}: {probe.get('reason', '')}"
    via = f" from {probe['via']}" if probe.get("via") else ""
    return (f"probe {probe.get('name')} {probe.get('url', '')}{via}: passed {', '.join(passed) or 'nothing'}; "
            f"{outcome}")


def verdicts(release=None, pods=None, claim=None, classes=None, events=None, endpoints=None, probes=None,
             names=None, since: str = "") -> list:
    """One verdict per runbook, in the catalogue's order. probes: ollama_health results carrying their
    endpoint's name and url (or the loop item holding them); names: namespace, claim, release, model
    and, where known, memory_need (the sizing estimate, a sentence)."""
    pods, classes, names = pods or [], classes or [], names or {}
    # a probe is an ollama_health result; from a loop, its endpoint (name, url) is its item
    probes = [{**p, **{k: v for k, v in (p.get("item") or {}).items() if k in ("name", "url")}} for p in probes or []]
    events = recent_events(events or [], since)
    return [_stall(release, pods, events, names), _oom(pods, probes, names), _pvc(claim, classes, events, names),
            _gateway(probes, endpoints, names), _model(probes, pods, names)]
