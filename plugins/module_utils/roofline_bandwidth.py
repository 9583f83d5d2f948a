# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the decode roofline's memory bandwidth comes from: the configured value, else the annotation
node_tuning put on the node the Ollama pod runs on; and, when neither gives one, why."""

from __future__ import annotations


def pod_node(pods: dict | None) -> str:
    """The node of the first running pod of a k8s_info result, '' when there is none."""
    for pod in (pods or {}).get("resources") or []:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            return node
    return ""


def roofline_bandwidth(configured, *, mode: str, pods: dict | None, node: dict | None, annotation: str,
                       namespace: str, selector: list) -> dict:
    """{bandwidth, origin, unknown, lookup, pod_node}: the bandwidth as text ('' when unknown), where it came
    from, why it is unknown ('' when known), whether the cluster is to be read for it, and the node of the
    running pod to read ('' before the pods are read). pods and node are the k8s_info results of the role's
    reads (None when not read)."""
    configured = "" if configured is None else str(configured)
    lookup = not configured and mode == "apply"
    name = pod_node(pods) if lookup else ""

    def unknown(reason: str) -> dict:
        return {"bandwidth": "", "origin": "", "unknown": reason, "lookup": lookup, "pod_node": name}

    if configured:
        return {"bandwidth": configured, "origin": "inference_check_memory_bandwidth", "unknown": "",
                "lookup": lookup, "pod_node": name}
    if not lookup:
        return unknown(f"ollama_flux_mode is {mode}, so no cluster is read")
    if "resources" not in (pods or {}):
        return unknown(f"the cluster could not be read: {_message(pods)}")
    if not name:
        return unknown(f"no running pod with labels {','.join(selector)} in namespace {namespace}")
    if "resources" not in (node or {}):
        return unknown(f"node {name} could not be read: {_message(node)}")
    if not node["resources"]:
        return unknown(f"node {name} was not found")
    value = ((node["resources"][0].get("metadata") or {}).get("annotations") or {}).get(annotation) or ""
    if not value:
        return unknown(f"node {name} has no annotation {annotation}")
    return {"bandwidth": str(value), "origin": f"the annotation {annotation} of node {name}", "unknown": "",
            "lookup": lookup, "pod_node": name}


def _message(result: dict | None) -> str:
    return (result or {}).get("msg") or "no answer"
