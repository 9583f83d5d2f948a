# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""inference_check's replica spread check, from what the role read: the pods (kubernetes.core.k8s_info),
each Ready pod's log before the parallel requests and after them (kubernetes.core.k8s_log in a loop).

Before the requests it says which pods to read and how many requests to send; after them, how the
requests spread (replica_spread.spread) and the one-line report, which also says why a spread could not
be judged: the pods could not be listed, none is Ready, no log could be read."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.replica_spread import (
    DEFAULT_REQUESTS_PER_REPLICA,
    requests_to_send,
    spread,
)


def ready_pods(pods: dict | None) -> list:
    """The names of the Ready pods of a k8s_info result, terminating ones left out: a terminating pod
    leaves the Service's endpoints while it still reports Ready."""
    names = []
    for pod in (pods or {}).get("resources") or []:
        metadata = pod.get("metadata") or {}
        conditions = (pod.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        if ready and not metadata.get("deletionTimestamp"):
            names.append(metadata["name"])
    return names


def _reads(loop: dict | None, name_of) -> tuple[list, list]:
    """([{name, log}], [(name, why)]) from a k8s_log loop's registered result; skipped items left out."""
    logs, unread = [], []
    for result in (loop or {}).get("results") or []:
        if result.get("skipped"):
            continue
        name = name_of(result["item"])
        if "log" in result:
            logs.append({"name": name, "log": result["log"]})
        else:
            unread.append((name, result.get("msg") or "no answer"))
    return logs, unread


def _pod_name(item) -> str:
    return item if isinstance(item, str) else item["metadata"]["name"]


def spread_check(pods: dict | None, before: dict | None = None, after: dict | None = None, *, concurrency=1,
                 requests_per_replica=DEFAULT_REQUESTS_PER_REPLICA, namespace: str, selector: list,
                 kubeconfig: str = "", context: str = "") -> dict:
    """{ready, logs_before, requests_to_send, spread, ok, report}. `spread` and `report` are None until
    `after` is given; `ok` is false only for a judged spread where a Ready replica served none."""
    logs_before, unread_before = _reads(before, _pod_name)
    result = {
        "ready": ready_pods(pods),
        "logs_before": logs_before,
        "requests_to_send": requests_to_send(concurrency, len(logs_before), requests_per_replica),
        "spread": None,
        "ok": True,
        "report": None,
    }
    if after is None:
        return result
    logs_after, unread_after = _reads(after, _pod_name)
    read_after = {entry["name"] for entry in logs_after}
    counted = spread(logs_after, [entry for entry in logs_before if entry["name"] in read_after],
                     concurrency=concurrency, requests_per_replica=requests_per_replica)
    unread = unread_before + unread_after
    unread_text = ("; ".join(f"{name}: {why}" for name, why in unread)
                   + " (a pod replaced during the requests cannot be read; otherwise grant the kubeconfig user get"
                   f" on pods/log in namespace {namespace}, or set inference_check_spread to false)")
    if "resources" not in (pods or {}):
        cluster = f"kubeconfig {kubeconfig}" if kubeconfig else "the default kubeconfig (KUBECONFIG or ~/.kube/config)"
        if context:
            cluster += f", context {context}"
        why = ((pods or {}).get("msg") or "no answer").rstrip(".")
        report = (f"not judged: the pods could not be listed in namespace {namespace} with {cluster}: {why}. Fix: "
                  "point inference_check_kubeconfig / inference_check_kube_context at the cluster, or set "
                  "inference_check_spread to false")
    elif not logs_before and not unread_before:
        report = (f"not judged: no Ready pod with labels {','.join(selector)} in namespace {namespace}. Fix: "
                  "inference_check_namespace and inference_check_pod_selector name the Ollama server pods")
    elif not logs_before:
        report = f"not judged: the log of no Ready pod could be read: {unread_text}"
    else:
        report = counted["summary"] + (f"; not counted, their log could not be read: {unread_text}" if unread else "")
    result.update(spread=counted, ok=counted["ok"], report=report)
    return result
