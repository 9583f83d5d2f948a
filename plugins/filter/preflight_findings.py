# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether models fit the memory, storage, CPU and nodes an inventory gives them: the preflight's judgement."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.preflight import PreflightError, check

DOCUMENTATION = r"""
name: preflight_findings
short_description: Judge models against the memory limit, claim size, CPU limit and nodes they will get
version_added: 1.2.0
author: AI Platform team
description:
  - Sizes each model from its GGUF facts (the results of M(aiplatform.ollama.ollama_model_info)) with the
    same terms as P(aiplatform.ollama.model_memory#filter), and compares the needs with the resources given.
  - "Checks: every model fits the memory limit with O(headroom_pct) added; all models plus room to
    download the largest again fit the claim; the CPU limit is at least one core; and, when O(nodes) is
    given, at least one schedulable node has the allocatable memory and CPU for the pod's requests and
    memory for the largest model."
  - Each finding names every number, the shortfall and the variable to change (O(variables)). Where a
    node carries the C(node.aiplatform.io/memory-bandwidth) annotation (bytes per second, measured by the
    C(node_tuning) role), the expected decode speed of each model on it is estimated too.
  - The C(preflight) role runs this before anything is seeded or deployed.
positional: _input
options:
  _input:
    description: The models, each a registered result of M(aiplatform.ollama.ollama_model_info).
    type: list
    elements: dict
    required: true
  memory_limit:
    description: The Ollama container's memory limit, a Kubernetes quantity. Not checked when empty.
    type: raw
  memory_request:
    description: Its memory request, checked against the nodes.
    type: raw
  storage_size:
    description: The model claim's size, a Kubernetes quantity. Not checked when empty.
    type: raw
  cpu_limit:
    description: The container's CPU limit. Not checked when empty.
    type: raw
  cpu_request:
    description: Its CPU request, checked against the nodes.
    type: raw
  nodes:
    description:
      - The Node objects the deployment may run on (the C(resources) of M(kubernetes.core.k8s_info)), or
        omitted when no cluster was read. An empty list fails the node check.
    type: list
    elements: dict
  replicas:
    description: The deployment's replicas (C(ollama_flux_replicas)), checked against the nodes.
    type: int
    default: 1
  access_modes:
    description:
      - The claim's access modes (C(ollama_flux_pvc_access_modes)). Without C(ReadOnlyMany) or C(ReadWriteMany)
        every replica runs on the one node the claim attaches to, so one node must hold them all.
    type: list
    elements: str
    default: [ReadWriteOnce]
  pods:
    description:
      - The cluster's Pod objects; their requests are taken from the nodes' allocatable resources when
        counting how many Ollama pods fit. Omitted, the nodes are taken as empty.
    type: list
    elements: dict
  own_labels:
    description: Labels of the deployment's own pods, which a rollout replaces and so are not counted as used.
    type: dict
  num_ctx:
    description: Context length per request (C(OLLAMA_CONTEXT_LENGTH)).
    type: int
    default: 4096
  num_parallel:
    description: Requests served at once (C(OLLAMA_NUM_PARALLEL)).
    type: int
    default: 1
  kv_cache_type:
    description: The KV cache's element type (C(OLLAMA_KV_CACHE_TYPE)).
    type: str
    choices: [f16, q8_0, q4_0]
    default: f16
  headroom_pct:
    description:
      - Percent added to each model's memory for what the sizing does not count (the page cache the
        container is charged for while it reads the model, allocator slack).
    type: float
    default: 10
  variables:
    description:
      - The inventory variables the resources come from, named in each fix. Keys C(memory_limit),
        C(memory_request), C(storage_size), C(cpu_limit), C(cpu_request), C(num_ctx), C(num_parallel),
        C(models), C(replicas), C(access_modes); the defaults are the C(ollama_flux_*) and C(model_cache_models) names.
    type: dict
"""

EXAMPLES = r"""
- name: Read the model's header (a few MB, never the weights)
  aiplatform.ollama.ollama_model_info:
    name: qwen2.5:72b
  register: qwen

- name: Will it fit 52Gi and a 100Gi claim?
  ansible.builtin.debug:
    msg: "{{ ([qwen] | aiplatform.ollama.preflight_findings(memory_limit='52Gi', storage_size='100Gi')).failures }}"
"""

RETURN = r"""
_value:
  description: The judgement.
  type: dict
  contains:
    ok:
      description: Whether every finding passed.
      type: bool
    findings:
      description:
        - One per check - C(check) (memory, storage, cpu, nodes, replicas), C(subject), C(ok), C(need) and C(have)
          (bytes, or millicores for cpu), C(shortfall) and C(message).
      type: list
      elements: dict
    failures:
      description: The messages of the findings that failed.
      type: list
      elements: str
    report:
      description: One line per finding (C(ok:) or C(FAILED:)) and per decode estimate, to print.
      type: list
      elements: str
    models:
      description: Each model's C(name), C(size_bytes), C(weights_bytes), C(memory) terms and C(memory_needed_bytes).
      type: list
      elements: dict
    decode_estimates:
      description: Expected decode tokens per second of each model on each node with a measured memory bandwidth.
      type: list
      elements: dict
    pods_that_fit:
      description:
        - How many Ollama pods the nodes can take (on one node for a claim only one node mounts); null when
          no node was read.
        - The deployment uses it to choose a rolling update when there is room for a surge pod.
      type: int
"""


def preflight_findings(models, memory_limit=None, memory_request=None, storage_size=None, cpu_limit=None,
                       cpu_request=None, nodes=None, num_ctx=4096, num_parallel=1, kv_cache_type="f16",
                       headroom_pct=10, variables=None, replicas=1, access_modes=None, pods=None, own_labels=None):
    try:
        return check(models, memory_limit=memory_limit, memory_request=memory_request, storage_size=storage_size,
                     cpu_limit=cpu_limit, cpu_request=cpu_request, nodes=nodes, num_ctx=num_ctx,
                     num_parallel=num_parallel, kv_cache_type=kv_cache_type, headroom_pct=headroom_pct,
                     variables=variables, replicas=replicas, access_modes=access_modes, pods=pods,
                     own_labels=own_labels)
    except PreflightError as exc:
        raise AnsibleFilterError(f"preflight_findings: {exc}") from exc


class FilterModule:
    """Capacity preflight filter."""

    def filters(self):
        return {"preflight_findings": preflight_findings}
