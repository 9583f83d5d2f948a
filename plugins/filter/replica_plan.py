# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How N Ollama replicas share the seeded store: placement, update strategy, draining."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.replica_plan import ReplicaPlanError, plan

DOCUMENTATION = r"""
name: replica_plan
short_description: Placement, update strategy and draining for N Ollama replicas on one model store
version_added: 1.2.0
author: AI Platform team
description:
  - Decides how the Deployment's replicas share the one seeded claim, before anything is applied.
  - A claim with C(ReadOnlyMany) or C(ReadWriteMany) lets the replicas spread over the nodes (a topology
    spread constraint on the hostname); a C(ReadWriteOnce) claim keeps every replica on one node (a
    required pod affinity); C(ReadWriteOncePod) admits one replica.
  - With room on the nodes for one pod more than the replicas, pods are replaced by a rolling update
    (maxSurge 1, maxUnavailable 0); otherwise, or when the nodes were not read, by C(Recreate), with a
    warning saying why.
  - A stopping replica keeps serving for O(drain_seconds) (a preStop sleep) while it leaves the Service's
    endpoints and its requests finish.
  - Refuses, naming the variable and the fix, fewer than one replica, several replicas on a store that is
    not pre-seeded or on a C(ReadWriteOncePod) claim, and more replicas than O(pods_that_fit).
positional: _input
options:
  _input:
    description: The number of replicas (C(ollama_flux_replicas)).
    type: int
    required: true
  access_modes:
    description: The claim's access modes (C(ollama_flux_pvc_access_modes)).
    type: list
    elements: str
    required: true
  preseeded:
    description: Whether the store is seeded before the pods start (C(ollama_flux_models_preseeded)).
    type: bool
    default: true
  strategy:
    description: C(auto), C(RollingUpdate) or C(Recreate) (C(ollama_flux_update_strategy)).
    type: str
    default: auto
  pods_that_fit:
    description: How many Ollama pods the nodes can hold (the preflight's C(pods_that_fit)); null when not known.
    type: int
  drain_seconds:
    description: Seconds a stopping replica keeps serving (C(ollama_flux_drain_seconds)); 0 for none.
    type: int
    default: 30
  selector:
    description: The pods' labels, for the affinity and spread terms.
    type: dict
  warm_model:
    description:
      - The model each replica loads before it is Ready (a postStart C(ollama run) of it), so a new pod of a
        rolling update or a model rollout takes requests only once its model is in memory. Empty for none.
      - Only on a pre-seeded store; a load that fails leaves the pod Ready, loading on the first request.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Two replicas on a ReadWriteOnce claim, with room for a third pod
  ansible.builtin.debug:
    msg: "{{ 2 | aiplatform.ollama.replica_plan(access_modes=['ReadWriteOnce'], pods_that_fit=3) }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    replicas:
      description: The number of replicas.
      type: int
    placement:
      description: C(spread), C(one-node) or C(one-pod).
      type: str
    update_strategy:
      description: The chart's C(updateStrategy) value.
      type: dict
    surge_room:
      description: Whether the nodes hold one pod more than the replicas; null when not known.
      type: bool
    affinity:
      description: Pod affinity keeping the replicas on one node, or empty.
      type: dict
    topology_spread_constraints:
      description: The spread over nodes, or empty.
      type: list
    lifecycle:
      description: The container's preStop sleep, or empty.
      type: dict
    termination_grace_period_seconds:
      description: The drain plus the time Ollama takes to stop.
      type: int
    warnings:
      description: What the user should know (an outage on each rollout, a stall).
      type: list
      elements: str
"""


def replica_plan(replicas, access_modes, preseeded=True, strategy="auto", pods_that_fit=None, drain_seconds=30,
                 selector=None, warm_model=""):
    try:
        return plan(replicas, access_modes, preseeded=preseeded, strategy=strategy, pods_that_fit=pods_that_fit,
                    drain_seconds=drain_seconds, selector=selector, warm_model=warm_model)
    except ReplicaPlanError as exc:
        raise AnsibleFilterError(f"replica_plan: {exc}") from exc


class FilterModule:
    """Replica plan filter."""

    def filters(self):
        return {"replica_plan": replica_plan}
