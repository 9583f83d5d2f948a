# Copyright: (c) 2026, AI Platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of a model rollout (seed beside, flip, verify, prune) or of a rollback."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.rollout_plan import RolloutPlanError, plan

DOCUMENTATION = r"""
name: rollout_plan
short_description: The steps of a model rollout without downtime, or of a rollback
version_added: 1.2.0
author: AI Platform team
description:
  - Plans a model rollout from the live HelmRelease (the model its pods are annotated with), the model asked
    for and the rollout record the C(model_rollout) role keeps beside the release.
  - Serving another model than the one asked for, the steps are C(seed) (the new model beside the served one),
    C(flip) (the deployment to it), C(verify) and C(prune) (the previous model's blobs no other manifest uses).
    A run stopped after a step finishes the rest; a finished rollout plans nothing.
  - With O(rollback), the deployment returns to the record's previous model while it is still in the store.
  - Fails, naming the fix, when nothing is deployed or there is nothing to roll back to.
positional: _input
options:
  _input:
    description: The model to serve (C(ollama_flux_model)).
    type: str
    required: true
  helmrelease:
    description: The live HelmRelease object, or null when it does not exist.
    type: dict
    required: true
  record:
    description: The rollout record (C(from), C(from_served), C(to), C(phase)), or empty.
    type: dict
    default: {}
  rollback:
    description: Plan a return to the record's previous model instead.
    type: bool
    default: false
  prune:
    description: Whether the previous model is pruned once the new one is verified.
    type: bool
    default: true
  cpu_limit:
    description: The pods' CPU limit (C(ollama_flux_cpu_limit)), for the new model's served name.
    type: raw
    default: 1000m
  alignment:
    description: C(ollama_flux_thread_alignment), for the new model's served name.
    type: str
    default: auto
"""

EXAMPLES = r"""
- name: Plan the rollout
  ansible.builtin.set_fact:
    rollout: "{{ 'qwen2.5:72b' | aiplatform.ollama.rollout_plan(helmrelease=release, record=record) }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    from:
      description: The model served before the rollout.
      type: str
    from_served:
      description: The name clients called it by (its thread-aligned model).
      type: str
    to:
      description: The model served after it.
      type: str
    to_served:
      description: The name clients call it by (the P(aiplatform.ollama.served_model#filter) filter).
      type: str
    phases:
      description: The phase the rollout record reaches after each step.
      type: dict
    rollback:
      description: Whether the plan is a rollback.
      type: bool
    steps:
      description: The steps to take, in order; empty when there is nothing to do.
      type: list
      elements: str
    prune_models:
      description: The models the prune step removes from the store.
      type: list
      elements: str
    summary:
      description: One sentence saying what the rollout does.
      type: str
"""


def rollout_plan(target, helmrelease, record=None, rollback=False, prune=True, cpu_limit="1000m", alignment="auto"):
    try:
        return plan(target, helmrelease, record, rollback=rollback, prune=prune, cpu_limit=cpu_limit,
                    alignment=alignment)
    except RolloutPlanError as exc:
        raise AnsibleFilterError(f"rollout_plan: {exc}") from exc


class FilterModule:
    """Rollout plan filter."""

    def filters(self):
        return {"rollout_plan": rollout_plan}
