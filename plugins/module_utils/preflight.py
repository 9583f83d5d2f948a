# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Whether the models fit the resources an inventory gives them, before anything slow starts.

The needs come from sizing.py applied to each model's own GGUF facts (ollama_model_info); the
resources are the inventory's quantities and, where a cluster was read, its nodes. Each check is a
finding that names every number, the shortfall and the variable to change, so that a failed run
says what to do without anyone redoing the arithmetic.

Checks:
memory
    every model, loaded with the deployment's context, parallel requests and KV cache type, plus a
    headroom (page cache and allocator slack the sizing does not count), fits the memory limit.
    Every seeded model is checked, not only the deployed one: a client can ask for any model on
    the claim and Ollama then loads it into the same pod.
storage
    all models, plus room to download the largest again beside itself (sizing.storage_needed), fit
    the claim.
cpu
    the CPU limit grants at least one whole core: Ollama runs at least one thread, and a quota below
    one core stops that thread for part of every CFS period.
nodes
    at least one schedulable node that the deployment may use has allocatable memory and CPU for
    the pod's requests and memory for the largest model (a limit above the node's memory is only
    reached by the kernel's OOM killer).
replicas
    the nodes hold the deployment's replicas: each Ollama pod takes its memory request or the largest
    model's need, whichever is more, and its CPU request, out of what the node has left after the
    other pods' requests (the deployment's own pods are replaced, so they are not counted). On a
    ReadWriteOnce claim every replica runs on one node, so one node must hold them all. The count,
    `pods_that_fit`, also tells the deployment whether a rolling update has room for its surge pod.
"""

from __future__ import annotations

import math

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError
from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_quantity import (
    QuantityError,
    cpu_millicores,
    memory_bytes,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.replica_plan import ReplicaPlanError, placement
from ansible_collections.aiplatform.ollama.plugins.module_utils.sizing import (
    DEFAULT_DECODE_EFFICIENCY,
    SizingError,
    decode_tokens_per_s,
    memory_needed,
    storage_needed,
)

GIB = 1024**3
DEFAULT_HEADROOM_PCT = 10
BANDWIDTH_ANNOTATION = "node.aiplatform.io/memory-bandwidth"

# the variables each resource comes from, named in the fixes; the role passes its inventory's names
DEFAULT_VARIABLES = {
    "memory_limit": "ollama_flux_memory_limit",
    "memory_request": "ollama_flux_memory_request",
    "storage_size": "ollama_flux_storage_size",
    "cpu_limit": "ollama_flux_cpu_limit",
    "cpu_request": "ollama_flux_cpu_request",
    "num_ctx": "ollama_flux_context_length",
    "num_parallel": "ollama_flux_num_parallel",
    "models": "model_cache_models",
    "replicas": "ollama_flux_replicas",
    "access_modes": "ollama_flux_pvc_access_modes",
}


class PreflightError(InputError):
    """Input the preflight cannot judge; the message names the variable and what was found."""


def gib(value):
    """Bytes as GiB with one decimal, for messages."""
    return f"{value / GIB:.1f} GiB"


def whole_gi(value):
    """The smallest whole-Gi quantity that holds these bytes, as a fix to write into an inventory."""
    return f"{max(1, math.ceil(value / GIB))}Gi"


def _quantity(parse, name, value, variables):
    if value in (None, ""):
        return None
    try:
        return parse(value)
    except QuantityError as err:
        raise PreflightError(f"{variables.get(name, name)}: {err}") from None


def _finding(check, subject, ok, message, need=None, have=None):
    return {
        "check": check,
        "subject": subject,
        "ok": ok,
        "need": need,
        "have": have,
        "shortfall": max(0, need - have) if need is not None and have is not None else None,
        "message": message,
    }


def _model_name(info):
    name = info.get("name") or info.get("model") if isinstance(info, dict) else None
    if not name:
        raise PreflightError(
            "each model must be a result of aiplatform.ollama.ollama_model_info (it has no name): "
            f"got {str(info)[:120]!r}"
        )
    return name


def _node_resources(node):
    meta = node.get("metadata") or {}
    name = meta.get("name", "?")
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    try:
        memory = memory_bytes(allocatable.get("memory", 0))
        cpu = cpu_millicores(allocatable.get("cpu", 0))
    except QuantityError as err:
        raise PreflightError(f"node {name} reports an allocatable quantity that cannot be read: {err}") from None
    bandwidth = (meta.get("annotations") or {}).get(BANDWIDTH_ANNOTATION)
    try:
        bandwidth = float(bandwidth) if bandwidth not in (None, "") else None
    except ValueError:
        bandwidth = None  # a hand-edited annotation only loses the speed estimate
    return {"name": name, "memory": memory, "cpu": cpu, "bandwidth": bandwidth,
            "schedulable": not (node.get("spec") or {}).get("unschedulable", False)}


def check(models, memory_limit=None, memory_request=None, storage_size=None, cpu_limit=None, cpu_request=None,
          nodes=None, num_ctx=4096, num_parallel=1, kv_cache_type="f16", headroom_pct=DEFAULT_HEADROOM_PCT,
          variables=None, replicas=1, access_modes=None, pods=None, own_labels=None):
    """Judge `models` (ollama_model_info results) against the resources; see the module docstring.

    A resource given as None or "" is not checked (a claim this collection does not own, no cluster
    read); `nodes` None means no node was read, [] that none matched. `pods` are the cluster's running
    Pod objects (their requests are taken from the nodes), `own_labels` the labels of the deployment's
    own pods (not taken); `access_modes` are the claim's (replica_plan.placement: on ReadWriteOnce every
    replica shares a node).
    """
    names = dict(DEFAULT_VARIABLES, **(variables or {}))
    if not isinstance(models, (list, tuple)) or not models:
        raise PreflightError(f"{names['models']}: no model to check (got {models!r})")
    try:
        headroom = float(headroom_pct)
    except (TypeError, ValueError):
        raise PreflightError(f"preflight_memory_headroom_pct must be a number, got {headroom_pct!r}") from None
    if headroom < 0:
        raise PreflightError(f"preflight_memory_headroom_pct must not be negative, got {headroom_pct!r}")
    limit = _quantity(memory_bytes, "memory_limit", memory_limit, names)
    request = _quantity(memory_bytes, "memory_request", memory_request, names)
    storage = _quantity(memory_bytes, "storage_size", storage_size, names)
    cpu = _quantity(cpu_millicores, "cpu_limit", cpu_limit, names)
    cpu_req = _quantity(cpu_millicores, "cpu_request", cpu_request, names)
    if isinstance(replicas, bool) or not str(replicas).strip().isdigit() or int(str(replicas).strip()) < 1:
        raise PreflightError(f"{names['replicas']} must be a whole number of at least 1, got {replicas!r}")
    replicas = int(str(replicas).strip())
    try:
        one_node = placement(access_modes or ["ReadWriteOnce"], names["access_modes"]) != "spread"
    except ReplicaPlanError as err:
        raise PreflightError(str(err)) from None

    sized = []
    for info in models:
        name = _model_name(info)
        try:
            memory = memory_needed(info, num_ctx, num_parallel, kv_cache_type)
        except SizingError as err:
            raise PreflightError(f"{name}: {err}") from None
        need = math.ceil(memory["total_bytes"] * (1 + headroom / 100))
        sized.append({"name": name, "size_bytes": int(info.get("size") or 0), "memory": memory,
                      "memory_needed_bytes": need, "weights_bytes": memory["weights_bytes"]})

    # each Node object read once, for the node check and the decode estimates
    resources = [_node_resources(n) for n in nodes] if nodes is not None else None
    findings = []
    for model in sized:
        findings.append(_memory_finding(model, limit, memory_limit, headroom, names))
    findings.append(_storage_finding(sized, storage, storage_size, names))
    findings.append(_cpu_finding(cpu, cpu_limit, names))
    fit = None
    if nodes is not None:
        findings.append(_nodes_finding(sized, resources, request, cpu_req, memory_request, cpu_request, names))
        per_node = _pods_per_node(sized, resources, request, cpu_req, pods or [], own_labels or {})
        fit = (max(per_node.values(), default=0) if one_node else sum(per_node.values()))
        findings.append(_replicas_finding(sized, per_node, fit, replicas, one_node, request, names))
    findings = [f for f in findings if f is not None]
    estimates = _decode_estimates(sized, resources or [])
    report = [("ok: " if f["ok"] else "FAILED: ") + f["message"] for f in findings]
    report += [
        f"estimate: {e['model']} on {e['node']} decodes about {e['tokens_per_s']} tokens/s "
        f"({e['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s measured memory bandwidth x "
        f"{DEFAULT_DECODE_EFFICIENCY:.0%} / {gib(e['weights_bytes'])} read per token)"
        for e in estimates
    ]
    return {
        "ok": all(f["ok"] for f in findings),
        "findings": findings,
        "failures": [f["message"] for f in findings if not f["ok"]],
        "report": report,
        "models": sized,
        "decode_estimates": estimates,
        "pods_that_fit": fit,
    }


def _memory_finding(model, limit, limit_text, headroom, names):
    mem = model["memory"]
    detail = (
        f"{model['name']} needs {gib(model['memory_needed_bytes'])} of memory: {gib(mem['weights_bytes'])} weights "
        f"+ {gib(mem['kv_cache_bytes'])} {mem['kv_cache_type']} KV cache ({mem['num_ctx']} tokens x "
        f"{mem['num_parallel']} parallel) + {gib(mem['compute_buffer_bytes'])} compute buffer + "
        f"{gib(mem['runtime_overhead_bytes'])} runtime, +{headroom:g}% headroom"
    )
    if limit is None:
        return _finding("memory", model["name"], True, f"{detail}; no memory limit is set, so none is checked",
                        need=model["memory_needed_bytes"])
    ok = limit >= model["memory_needed_bytes"]
    have = f"{names['memory_limit']} is {limit_text} ({gib(limit)})"
    if ok:
        return _finding("memory", model["name"], True, f"{detail}; {have}", model["memory_needed_bytes"], limit)
    return _finding(
        "memory", model["name"], False,
        f"{detail}; {have}, {gib(model['memory_needed_bytes'] - limit)} short: the pod would be OOMKilled while "
        f"loading the model. Fix: set {names['memory_limit']} and {names['memory_request']} to "
        f"{whole_gi(model['memory_needed_bytes'])} or more (on nodes that have it), lower {names['num_ctx']} or "
        f"{names['num_parallel']}, or choose a smaller model.",
        model["memory_needed_bytes"], limit,
    )


def _storage_finding(sized, storage, storage_text, names):
    need = storage_needed([m["size_bytes"] for m in sized])
    listing = " + ".join(f"{m['name']} {gib(m['size_bytes'])}" for m in sized)
    detail = (
        f"the models need {gib(need['total_bytes'])} of storage: {listing}, plus {gib(need['in_flight_bytes'])} "
        "to download the largest again beside itself"
    )
    if storage is None:
        return _finding("storage", "claim", True, f"{detail}; the claim's size is not known here, so it is not "
                        "checked", need=need["total_bytes"])
    have = f"{names['storage_size']} is {storage_text} ({gib(storage)})"
    if storage >= need["total_bytes"]:
        return _finding("storage", "claim", True, f"{detail}; {have}", need["total_bytes"], storage)
    return _finding(
        "storage", "claim", False,
        f"{detail}; {have}, {gib(need['total_bytes'] - storage)} short: the seed would stop with the volume full. "
        f"Fix: set {names['storage_size']} to {whole_gi(need['total_bytes'])} or more, or seed fewer models "
        f"({names['models']}).",
        need["total_bytes"], storage,
    )


def _cpu_finding(cpu, cpu_text, names):
    if cpu is None:
        return None
    if cpu >= 1000:
        return _finding("cpu", "limit", True, f"{names['cpu_limit']} is {cpu_text}: {cpu // 1000} whole "
                        f"core(s) for Ollama's threads", 1000, cpu)
    return _finding(
        "cpu", "limit", False,
        f"{names['cpu_limit']} is {cpu_text} ({cpu}m), less than one core: Ollama runs at least one thread, and "
        f"a quota below one core stops it for part of every period. Fix: set {names['cpu_limit']} to 1000m or more.",
        1000, cpu,
    )


def _nodes_finding(sized, nodes, request, cpu_req, request_text, cpu_req_text, names):
    largest = max(sized, key=lambda m: m["memory_needed_bytes"])
    usable = [n for n in nodes if n["schedulable"]]
    if not usable:
        seen = ", ".join(n["name"] for n in nodes) or "none"
        return _finding(
            "nodes", "cluster", False,
            f"no schedulable node matches the deployment's node selector (nodes seen: {seen}). Fix: label the "
            "inference nodes (node_tuning_labels_enabled) or change ollama_flux_node_selector.",
        )

    def fits(node):
        return ((request is None or node["memory"] >= request) and (cpu_req is None or node["cpu"] >= cpu_req)
                and node["memory"] >= largest["memory_needed_bytes"])

    listing = ", ".join(f"{n['name']} ({gib(n['memory'])}, {n['cpu']}m CPU)" for n in usable)
    best = max(usable, key=lambda n: n["memory"])
    good = [n["name"] for n in usable if fits(n)]
    if good:
        return _finding("nodes", "cluster", True, f"{len(good)} of {len(usable)} schedulable node(s) can run "
                        f"{largest['name']}: {', '.join(good)}", largest["memory_needed_bytes"], best["memory"])
    wants = [f"{gib(largest['memory_needed_bytes'])} for {largest['name']}"]
    if request is not None:
        wants.append(f"{names['memory_request']} {request_text}")
    if cpu_req is not None:
        wants.append(f"{names['cpu_request']} {cpu_req_text}")
    return _finding(
        "nodes", "cluster", False,
        f"no schedulable node has the allocatable resources the pod needs ({'; '.join(wants)}); the nodes have "
        f"{listing}. Fix: run on nodes with at least {whole_gi(largest['memory_needed_bytes'])} allocatable "
        "memory (ollama_flux_node_selector), or choose a smaller model.",
        largest["memory_needed_bytes"], best["memory"],
    )


def _pod_requests(pod):
    """Memory bytes and CPU millicores a pod's containers request (what the scheduler takes)."""
    memory = cpu = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        asked = (container.get("resources") or {}).get("requests") or {}
        try:
            memory += memory_bytes(asked.get("memory", 0))
            cpu += cpu_millicores(asked.get("cpu", 0))
        except QuantityError:
            continue  # the API server validated it; a quantity this parser does not know only loses precision
    return memory, cpu


def _pods_per_node(sized, nodes, request, cpu_req, pods, own_labels):
    """How many Ollama pods each schedulable node can take after the other pods' requests."""
    pod_memory = max(request or 0, max(m["memory_needed_bytes"] for m in sized))
    used = {}
    for pod in pods:
        spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        if own_labels and all(labels.get(k) == v for k, v in own_labels.items()):
            continue  # replaced by the rollout
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or not spec.get("nodeName"):
            continue
        memory, cpu = _pod_requests(pod)
        total = used.setdefault(spec["nodeName"], [0, 0])
        total[0] += memory
        total[1] += cpu
    counts = {}
    for node in nodes:
        if not node["schedulable"]:
            continue
        memory_used, cpu_used = used.get(node["name"], (0, 0))
        count = max(node["memory"] - memory_used, 0) // pod_memory if pod_memory else 0
        if cpu_req:
            count = min(count, max(node["cpu"] - cpu_used, 0) // cpu_req)
        counts[node["name"]] = int(count)
    return counts


def _replicas_finding(sized, per_node, fit, replicas, one_node, request, names):
    largest = max(sized, key=lambda m: m["memory_needed_bytes"])
    pod_memory = max(request or 0, largest["memory_needed_bytes"])
    listing = ", ".join(f"{name}: {count}" for name, count in per_node.items()) or "no schedulable node"
    where = "one node (the claim is ReadWriteOnce: every replica shares its node)" if one_node else "the nodes"
    detail = (f"{replicas} replica(s) x {gib(pod_memory)} each ({names['memory_request']} or {largest['name']}'s "
              f"need, whichever is more); {where} can take {fit} Ollama pod(s) after the other pods' requests "
              f"({listing})")
    if fit >= replicas:
        surge = ("room for a surge pod: rolling updates keep every replica serving" if fit > replicas else
                 "no room for a surge pod: pods are recreated on each rollout")
        return _finding("replicas", "cluster", True, f"{detail}; {surge}", replicas, fit)
    return _finding(
        "replicas", "cluster", False,
        f"{detail}, {replicas - fit} short. Fix: lower {names['replicas']} to {max(fit, 1)}, add nodes with "
        f"{whole_gi(pod_memory)} free per replica (ollama_flux_node_selector), "
        + ("use a ReadOnlyMany or ReadWriteMany claim so the replicas can spread over nodes, " if one_node else "")
        + "or choose a smaller model or context.",
        replicas, fit,
    )


def _decode_estimates(sized, nodes):
    """Expected decode tok/s of each model on each node whose memory bandwidth node_tuning measured."""
    estimates = []
    for node in nodes:
        if not node["bandwidth"]:
            continue
        for model in sized:
            estimates.append({
                "node": node["name"], "model": model["name"], "bandwidth_bytes_per_s": node["bandwidth"],
                "weights_bytes": model["weights_bytes"],
                "tokens_per_s": round(decode_tokens_per_s(node["bandwidth"], model["weights_bytes"]), 2),
            })
    return estimates
