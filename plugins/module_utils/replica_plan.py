# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How N Ollama replicas share one seeded model store: where they may run and how they are replaced.

One decision, made before anything is applied:

* **Placement.** A claim that several nodes may mount (ReadOnlyMany or ReadWriteMany) lets the
  replicas spread over the nodes (a topology spread constraint on the hostname); a ReadWriteOnce claim
  attaches to one node, so every replica must run there (a required pod affinity to each other); a
  ReadWriteOncePod claim admits one pod only.
* **Replacement.** With room on the nodes for one pod more than the replicas, a rolling update
  (maxSurge 1, maxUnavailable 0) never has fewer than N replicas serving; without room the surge pod
  could never schedule and the rollout would stall, so the pods are recreated (an outage, said aloud).
  Nodes that were not read (GitOps render, preflight off) give no room to count on.
* **Draining.** A replica that is told to stop keeps serving for `drain_seconds` (a preStop sleep):
  the endpoints controller and every kube-proxy drop it first, and requests already running finish.
  Ollama's SIGTERM handler closes every connection at once, so without the sleep a rolling update
  fails the requests in flight.
* **Warming.** A replica loads the model it serves before it is Ready (a postStart `ollama run` of it):
  a new pod of a rolling update, or of a model rollout, takes requests only once its model is in
  memory, so no client waits through a load of many gigabytes. A load that fails leaves the pod as it
  was before warming (Ready, loading on the first request): verify names the cause.

A store the chart pulls into at start (not pre-seeded) is written by the pod, so it admits one replica.
"""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError

SHARED_MODES = ("ReadOnlyMany", "ReadWriteMany")
ONE_NODE_MODES = ("ReadWriteOnce",)
ONE_POD_MODES = ("ReadWriteOncePod",)
ALL_MODES = SHARED_MODES + ONE_NODE_MODES + ONE_POD_MODES
STRATEGIES = ("auto", "RollingUpdate", "Recreate")
HOSTNAME = "kubernetes.io/hostname"
# after the preStop sleep, SIGTERM: Ollama stops its runners within seconds
STOP_GRACE_SECONDS = 30
# The postStart hook: wait for the server, then load the model (its name an argument, never script
# text); `ollama run <model> ""` with no input loads it and returns without generating.
WARM_SCRIPT = ('until /bin/ollama ps >/dev/null 2>&1; do sleep 0.2; done; '
               '/bin/ollama run "$1" "" </dev/null >/dev/null 2>&1 || true')


class ReplicaPlanError(InputError):
    """Replicas, access modes or strategy that cannot work together."""


def _whole(value, name, minimum):
    if isinstance(value, bool):
        raise ReplicaPlanError(f"{name} must be a whole number, got {value!r}")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ReplicaPlanError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise ReplicaPlanError(f"{name} is {number}, it must be at least {minimum}")
    return number


def placement(access_modes, variable="ollama_flux_pvc_access_modes"):
    """`spread` (any node may mount the claim), `one-node` or `one-pod`; raises ReplicaPlanError."""
    modes = list(access_modes or []) if isinstance(access_modes, (list, tuple)) else access_modes
    if not isinstance(modes, list) or not modes or any(m not in ALL_MODES for m in modes):
        raise ReplicaPlanError(
            f"{variable} is {access_modes!r}: give the claim's access modes as a list, each one of "
            f"{', '.join(ALL_MODES)}")
    if any(m in SHARED_MODES for m in modes):
        return "spread"
    if any(m in ONE_NODE_MODES for m in modes):
        return "one-node"
    return "one-pod"


def lifecycle(preseeded, drain_seconds, warm_model=""):
    """The container's lifecycle hooks: preStop drain and postStart warming, on a pre-seeded store only
    (the chart's own postStart pulls into a store that is not)."""
    if not preseeded:
        return {}
    hooks = {}
    if warm_model:
        hooks["postStart"] = {"exec": {"command": ["/bin/sh", "-c", WARM_SCRIPT, "warm", warm_model]}}
    if drain_seconds > 0:
        hooks["preStop"] = {"sleep": {"seconds": drain_seconds}}
    return hooks


def plan(replicas, access_modes, preseeded=True, strategy="auto", pods_that_fit=None, drain_seconds=30,
         selector=None, variables=None, warm_model=""):
    """The Deployment's scheduling and update settings for `replicas` pods; raises ReplicaPlanError.

    `pods_that_fit` is how many server pods the nodes can hold (the preflight's count), None when the
    nodes were not read. `selector` is the pods' matchLabels. Returns a dict: `placement` (spread,
    one-node or one-pod), `update_strategy` (the chart's updateStrategy value), `affinity` and
    `topology_spread_constraints` (to merge into the chart's values), `lifecycle` and
    `termination_grace_period_seconds`, `surge_room` (True, False or None when unknown) and `warnings`.
    `warm_model` is the model each replica loads before it is Ready ("" for none).
    """
    names = {"replicas": "ollama_flux_replicas", "access_modes": "ollama_flux_pvc_access_modes",
             "strategy": "ollama_flux_update_strategy", "drain_seconds": "ollama_flux_drain_seconds",
             "preseeded": "ollama_flux_models_preseeded"}
    names.update(variables or {})
    count = _whole(replicas, names["replicas"], 1)
    drain = _whole(drain_seconds, names["drain_seconds"], 0)
    if strategy not in STRATEGIES:
        raise ReplicaPlanError(f"{names['strategy']} is {strategy!r}, not one of {', '.join(STRATEGIES)}")
    modes = list(access_modes or [])
    where = placement(modes, names["access_modes"])
    fit = None if pods_that_fit in (None, "") else _whole(pods_that_fit, "pods_that_fit", 0)

    if count > 1 and not preseeded:
        raise ReplicaPlanError(
            f"{names['replicas']} is {count}, but {names['preseeded']} is false: each pod would pull into the "
            f"one store at start, writing it together. Seed the store first ({names['preseeded']}: true, "
            f"seed_models.yml), which the replicas then share read-only, or keep {names['replicas']}: 1.")
    if count > 1 and where == "one-pod":
        raise ReplicaPlanError(
            f"{names['replicas']} is {count}, but {names['access_modes']} is {modes!r}: a ReadWriteOncePod claim "
            "is mounted by one pod only. Use ReadOnlyMany or ReadWriteMany where the storage class offers it, "
            f"ReadWriteOnce to run every replica on one node, or {names['replicas']}: 1.")
    if fit is not None and fit < count:
        nodes = "one node" if where == "one-node" else "the nodes"
        raise ReplicaPlanError(
            f"{names['replicas']} is {count}, but {nodes} can hold {fit} Ollama pod(s) (the preflight's count"
            f"{', on one node: the claim is ReadWriteOnce' if where == 'one-node' else ''}). Lower "
            f"{names['replicas']}, add nodes with the memory the preflight names, or lower the pod's memory "
            "request with a smaller model or context.")

    warnings = []
    surge_room = None if fit is None else fit >= count + 1
    if not preseeded:
        # the pod writes the store: never two at once
        chosen = "Recreate"
    elif strategy != "auto":
        chosen = strategy
        if strategy == "RollingUpdate" and surge_room is False:
            warnings.append(
                f"{names['strategy']} is RollingUpdate, but the nodes hold {fit} pod(s), none more than the "
                f"{count} replica(s): the surge pod will not schedule and the rollout will stall until one is "
                "removed.")
    elif surge_room:
        chosen = "RollingUpdate"
    else:
        chosen = "Recreate"
        why = ("the nodes were not read (GitOps render, or preflight off)" if surge_room is None else
               f"the nodes hold {fit} Ollama pod(s), no room for one beside the {count} replica(s)")
        warnings.append(
            f"Pods are replaced by Recreate, an outage on every rollout: {why}. Fix: give the nodes room for "
            f"{count + 1} pods, or set {names['strategy']}: RollingUpdate when you know they have it.")
    if chosen == "RollingUpdate":
        update_strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    else:
        update_strategy = {"type": "Recreate"}

    selector = dict(selector or {})
    affinity = {}
    spread = []
    # Set whatever the count: the count is per environment (a Flux variable in GitOps mode) and the
    # objects are one base for every environment; with one replica the terms hold trivially, and a
    # rolling update's surge pod must still follow its predecessor to a ReadWriteOnce claim's node.
    if where == "one-node":
        # a ReadWriteOnce claim attaches to one node: the replicas follow each other there
        affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": selector}}]}}
    elif where == "spread":
        spread = [{"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway",
                   "labelSelector": {"matchLabels": selector}}]

    return {
        "replicas": count,
        "placement": where,
        "update_strategy": update_strategy,
        "surge_room": surge_room,
        "affinity": affinity,
        "topology_spread_constraints": spread,
        "lifecycle": lifecycle(preseeded, drain, warm_model),
        "termination_grace_period_seconds": drain + STOP_GRACE_SECONDS,
        "warnings": warnings,
    }
