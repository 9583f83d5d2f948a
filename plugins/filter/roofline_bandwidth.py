# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The decode roofline's memory bandwidth and where it came from, or why it is unknown."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.roofline_bandwidth import roofline_bandwidth

DOCUMENTATION = r"""
name: roofline_bandwidth
short_description: The memory bandwidth a decode roofline report uses, where it came from, or why it is unknown
version_added: 1.2.0
author: AI Platform team
description:
  - The configured bandwidth when there is one; else, in apply mode, the annotation the C(node_tuning) role put on
    the node the Ollama pod runs on, read from the results of M(kubernetes.core.k8s_info) for the running pods and
    for that node.
  - When neither gives a bandwidth, says why in C(unknown) (the mode reads no cluster, the cluster or the node could
    not be read, no pod runs, the node has no annotation), so the report can name it.
positional: _input
options:
  _input:
    description: The configured bandwidth in bytes per second (C(inference_check_memory_bandwidth)); empty for none.
    type: raw
    required: true
  mode:
    description: C(ollama_flux_mode); only V(apply) reads the cluster.
    type: str
    required: true
  pods:
    description: The M(kubernetes.core.k8s_info) result for the running Ollama pods; omit when not read.
    type: dict
  node:
    description: The M(kubernetes.core.k8s_info) result for the node of the first of them; omit when not read.
    type: dict
  annotation:
    description: The node annotation that holds the bandwidth.
    type: str
    required: true
  namespace:
    description: The pods' namespace, for the reason.
    type: str
    required: true
  selector:
    description: The pods' label selectors, for the reason.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Say where the bandwidth comes from
  ansible.builtin.debug:
    msg: "{{ __bandwidth.bandwidth or 'unknown: ' ~ __bandwidth.unknown }}"
  vars:
    __bandwidth: >-
      {{ inference_check_memory_bandwidth | aiplatform.ollama.roofline_bandwidth(mode='apply', pods=__pods,
           node=__node, annotation='node.aiplatform.io/memory-bandwidth', namespace='ollama',
           selector=['app.kubernetes.io/name=ollama']) }}
"""

RETURN = r"""
_value:
  description:
    - C(bandwidth), the bandwidth as text, empty when unknown; C(origin), where it came from; C(unknown), why there
      is none (empty when there is one).
    - C(lookup), whether the cluster is read for it (no bandwidth configured, apply mode); C(pod_node), the node of
      the first running pod in O(pods), whose annotations are to be read (empty before the pods are read).
  type: dict
"""


def _roofline_bandwidth(configured, mode, pods=None, node=None, annotation="", namespace="", selector=()):
    if not annotation:
        raise AnsibleFilterError("roofline_bandwidth: annotation is required")
    return roofline_bandwidth(configured, mode=mode, pods=pods, node=node, annotation=annotation,
                              namespace=namespace, selector=list(selector or []))


class FilterModule:
    """roofline_bandwidth filter."""

    def filters(self):
        return {"roofline_bandwidth": _roofline_bandwidth}
