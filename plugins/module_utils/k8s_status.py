# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Why a workload is not ready, read from the objects Kubernetes and Flux report.

Given what a failed wait collected (a HelmRelease or a Job, the pods, the claims, the events), name
the one cause that explains it, with the evidence it rests on, and lay the rest out as a report an
operator can read line by line. The roles map the cause to the variable that fixes it.
"""

from __future__ import annotations

# Causes, most specific first: a pod that cannot be scheduled or a claim that cannot bind explains a
# release that timed out, never the other way round.
CAUSES = ("claim_pending", "unschedulable", "oom_killed", "image_pull", "crash_loop", "container_failed",
          "mount_failed", "job_failed", "release_failed", "not_ready")

_IMAGE_WAITING = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
_CONFIG_WAITING = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


def _timestamp(event: dict) -> str:
    """An event's last occurrence; the scheduler's events carry eventTime, not lastTimestamp."""
    series = event.get("series") or {}
    return (series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("eventTime")
            or event.get("firstTimestamp") or (event.get("metadata") or {}).get("creationTimestamp") or "")


def condition(obj: dict, kind: str) -> dict:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return {}


def _name(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}".lstrip("/")


def recent_events(events: list, since: str) -> list:
    """Events at or after since (RFC 3339 strings compare in time order), oldest first; all of them
    when none is that recent (an old event is still better evidence than none)."""
    chosen = [e for e in events if not since or _timestamp(e) >= since]
    return sorted(chosen or events, key=_timestamp)


def claim_warnings(name: str, events: list) -> list:
    """The Warning events about the claim of that name (ProvisioningFailed, ...), in the given order."""
    return [e for e in events if e.get("type") == "Warning"
            and (e.get("involvedObject") or {}).get("kind") == "PersistentVolumeClaim"
            and (e.get("involvedObject") or {}).get("name") == name]


def _container_statuses(pod: dict) -> list:
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def pod_cause(pod: dict):
    """(cause, sentence) for a pod whose containers tell why it is not ready, else None."""
    name = _name(pod)
    for cs in _container_statuses(pod):
        last = (cs.get("lastState") or {}).get("terminated") or {}
        now = (cs.get("state") or {}).get("terminated") or {}
        waiting = (cs.get("state") or {}).get("waiting") or {}
        restarts = cs.get("restartCount", 0)
        if "OOMKilled" in (last.get("reason"), now.get("reason")):
            return "oom_killed", (f"container {cs['name']} of pod {name} was OOMKilled "
                                  f"(restarts {restarts}): the model does not fit the memory limit")
        if waiting.get("reason") in _IMAGE_WAITING:
            return "image_pull", (f"container {cs['name']} of pod {name} cannot pull {cs.get('image', '')}: "
                                  f"{waiting['reason']} {waiting.get('message', '')}".rstrip())
        if waiting.get("reason") == "CrashLoopBackOff" or waiting.get("reason") in _CONFIG_WAITING:
            detail = last.get("message") or last.get("reason") or waiting.get("message", "")
            return "crash_loop", (f"container {cs['name']} of pod {name} is in {waiting['reason']} "
                                  f"(restarts {restarts}, last exit {last.get('exitCode', '?')}): {detail}".rstrip())
        if now and now.get("exitCode", 0) != 0:
            return "container_failed", (f"container {cs['name']} of pod {name} exited with code "
                                        f"{now.get('exitCode')} ({now.get('reason', '')}): "
                                        f"{now.get('message', '')}".rstrip(": "))
    return None


def explain(release: dict | None = None, job: dict | None = None, pods: list | None = None,
            claims: list | None = None, events: list | None = None, logs: dict | None = None,
            since: str = "") -> dict:
    """The cause of a failed wait, one sentence of it, its evidence and a sectioned report.

    release: the HelmRelease (or None); job: the Job (or None); pods, claims: what the workload runs
    on; events: core/v1 Events of the namespaces involved; logs: pod name -> log lines; since: ignore
    events before this RFC 3339 time (the start of the run), so an older, fixed failure does not mask
    the current one.
    Returns {'cause': one of CAUSES, 'reason': str, 'evidence': [str], 'report': [str]}.
    """
    pods, claims = pods or [], claims or []
    events = recent_events(events or [], since)
    warnings = [e for e in events if e.get("type") == "Warning"]
    found = []  # (cause, sentence, evidence)

    for claim in claims:
        if (claim.get("status") or {}).get("phase") != "Bound":
            about = claim_warnings(claim["metadata"]["name"], events)
            detail = about[-1].get("message", "") if about else "no event explains it"
            evidence = [event_line(e) for e in about[-3:]]
            found.append(("claim_pending", f"claim {_name(claim)} is "
                          f"{(claim.get('status') or {}).get('phase', 'Pending')}: {detail}", evidence))

    for pod in pods:
        cause = pod_cause(pod)
        if cause:
            found.append((*cause, [pod_line(pod)]))

    # pods may be gone (uninstall remediation deletes them); their events outlive them
    by_reason = {}
    for event in warnings:
        if (event.get("involvedObject") or {}).get("kind") == "Pod":
            by_reason.setdefault(event.get("reason"), []).append(event)
    if "FailedScheduling" in by_reason:
        last = by_reason["FailedScheduling"][-1]
        found.append(("unschedulable", f"pod {_involved(last)} cannot be scheduled: {last.get('message', '')}",
                      [event_line(last)]))
    for reason in ("FailedMount", "FailedAttachVolume"):
        if reason in by_reason:
            last = by_reason[reason][-1]
            found.append(("mount_failed", f"pod {_involved(last)} cannot mount its volumes: {last.get('message', '')}",
                          [event_line(last)]))

    if job is not None:
        failed = condition(job, "Failed")
        if failed.get("status") == "True":
            found.append(("job_failed", f"Job {_name(job)} failed: {failed.get('reason', '')} "
                          f"{failed.get('message', '')}".rstrip(), [_condition_line(failed)]))
    if release is not None:
        ready = condition(release, "Ready")
        if ready.get("status") != "True":
            found.append(("release_failed", f"HelmRelease {_name(release)} is not Ready: {ready.get('reason', '?')} "
                          f"{ready.get('message', '')}".rstrip(), [_condition_line(ready)]))

    if found:
        cause, reason, evidence = min(found, key=lambda item: CAUSES.index(item[0]))
    else:
        cause, reason, evidence = "not_ready", "nothing reported explains it yet (still starting?)", []
    return {"cause": cause, "reason": reason, "evidence": evidence,
            "report": _report(release, job, pods, claims, events, logs or {})}


def explain_evidence(evidence: dict | None, job: str = "", job_evidence: dict | None = None, claim: bool = True,
                     since: str = "") -> dict:
    """explain() on what the diagnosis gathered (roles/diagnose: diagnose_evidence, and for a Job
    diagnose_job_evidence), so that a failed wait reads the cluster once, for its runbooks and its cause alike.

    job: the name of the Job whose wait failed, "" where it is the HelmRelease's; job_evidence: the Job, its
    pods and their logs ({"job", "pods", "logs"}). claim: whether the claim is the workload's to explain (a
    chart that makes its own claim has it judged by its pods instead). Empty evidence, from a diagnosis that
    could not run, still names the workload that failed.
    """
    evidence, job_evidence = evidence or {}, job_evidence or {}
    claims = [evidence["claim"]] if claim and evidence.get("claim") else []
    events = evidence.get("events") or []
    if not job:
        return explain(release=evidence.get("release") or {}, pods=evidence.get("pods") or [], claims=claims,
                       events=events, since=since)
    found = job_evidence.get("job") or {}
    namespace = (found.get("metadata") or {}).get("namespace")
    # the diagnosis also reads the HelmRelease's events in the Flux namespace: no part of a Job's story
    events = [e for e in events if not namespace or _event_namespace(e) == namespace]
    return explain(job=found, pods=job_evidence.get("pods") or [], claims=claims, events=events,
                   logs=job_evidence.get("logs") or {}, since=since)


def _event_namespace(event: dict) -> str:
    """Where an event is recorded (as the API returns it), else the namespace of what it is about."""
    return (event.get("metadata") or {}).get("namespace") or (event.get("involvedObject") or {}).get("namespace", "")


def _involved(event: dict) -> str:
    obj = event.get("involvedObject") or {}
    return f"{obj.get('namespace', '')}/{obj.get('name', '')}".lstrip("/")


def event_line(event: dict) -> str:
    obj = event.get("involvedObject") or {}
    count = (event.get("series") or {}).get("count") or event.get("count") or 1
    return (f"{_timestamp(event)} {event.get('type', '')} {obj.get('kind', '')}/{obj.get('name', '')} "
            f"{event.get('reason', '')} (x{count}): {event.get('message', '').strip()}")


def _condition_line(condition: dict) -> str:
    return (f"{condition.get('type')}={condition.get('status')} {condition.get('reason', '')}: "
            f"{condition.get('message', '')}").rstrip(": ")


def pod_line(pod: dict) -> str:
    status = pod.get("status") or {}
    node = (pod.get("spec") or {}).get("nodeName") or "(no node)"
    parts = [f"pod {_name(pod)} {status.get('phase', '?')} on {node}"]
    for cs in _container_statuses(pod):
        state, detail = next(iter((cs.get("state") or {"unknown": {}}).items()))
        last = (cs.get("lastState") or {}).get("terminated") or {}
        text = f"{cs['name']}: {state}"
        if detail.get("reason"):
            text += f"/{detail['reason']}"
        text += f", ready={cs.get('ready', False)}, restarts={cs.get('restartCount', 0)}"
        if last:
            text += f", last terminated {last.get('reason', '')} exit {last.get('exitCode', '?')}"
        parts.append(text)
    return "; ".join(parts)


def _report(release, job, pods, claims, events, logs) -> list:
    lines = []
    if release is not None:
        status = release.get("status") or {}
        generation = (release.get("metadata") or {}).get("generation", "?")
        lines.append(f"== HelmRelease {_name(release)} (generation {generation}, "
                     f"observed {status.get('observedGeneration', '?')}) ==")
        lines.append(f"install failures {status.get('installFailures', 0)}, upgrade failures "
                     f"{status.get('upgradeFailures', 0)}, last attempted {status.get('lastAttemptedRevision', '?')}")
        lines.extend(_condition_line(c) for c in status.get("conditions") or [])
    if job is not None:
        status = job.get("status") or {}
        lines.append(f"== Job {_name(job)} (active {status.get('active', 0)}, succeeded {status.get('succeeded', 0)}, "
                     f"failed {status.get('failed', 0)}) ==")
        lines.extend(_condition_line(c) for c in status.get("conditions") or [])
    if claims:
        lines.append("== Claims ==")
        for claim in claims:
            spec = claim.get("spec") or {}
            lines.append(f"claim {_name(claim)} {(claim.get('status') or {}).get('phase', '?')}, storage class "
                         f"{spec.get('storageClassName') or '(default)'}, volume {spec.get('volumeName') or '(none)'}")
    lines.append("== Pods ==")
    lines.extend([pod_line(pod) for pod in pods] or ["(none)"])
    lines.append("== Events, oldest first ==")
    lines.extend([event_line(e) for e in events[-25:]] or ["(none)"])
    for pod, log in logs.items():
        lines.append(f"== log of {pod}, last 40 lines ==")
        lines.extend(list(log)[-40:] or ["(empty)"])
    return lines
