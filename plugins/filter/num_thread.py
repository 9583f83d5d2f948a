# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ollama's num_thread for a pod's CPU limit: the one formula every role uses."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_quantity import QuantityError
from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_quantity import num_thread as _num_thread

DOCUMENTATION = r"""
name: num_thread
short_description: The Ollama num_thread for a pod's CPU limit
version_added: 1.2.0
author: AI Platform team
description:
  - Whole CPUs of the limit, at least one. llama.cpp otherwise starts one thread per physical core of
    the host and ignores the CFS quota, and more threads than the quota grants collapses throughput.
  - Where the node's physical cores are given, they cap it; on a multi-NUMA node one NUMA node's cores do.
    M(aiplatform.ollama.node_profile_facts) reports the same number as C(recommended_num_thread).
positional: _input
options:
  _input:
    description: The CPU limit, a Kubernetes quantity (C(2000m), C(2), C(1.5)).
    type: raw
    required: true
  physical_cores:
    description: The node's physical cores; omit when the node is not known.
    type: int
  numa_nodes:
    description: The node's NUMA nodes.
    type: int
    default: 1
"""

EXAMPLES = r"""
- name: Threads for a 1500m limit
  ansible.builtin.debug:
    msg: "{{ '1500m' | aiplatform.ollama.num_thread }}"   # 1

- name: Threads for a 16-CPU limit on a 2-socket node with 8 cores per socket
  ansible.builtin.debug:
    msg: "{{ '16' | aiplatform.ollama.num_thread(physical_cores=16, numa_nodes=2) }}"   # 8
"""

RETURN = r"""
_value:
  description: The number of threads.
  type: int
"""


def num_thread(cpu_limit, physical_cores=None, numa_nodes=1):
    try:
        return _num_thread(cpu_limit, physical_cores, numa_nodes)
    except QuantityError as exc:
        raise AnsibleFilterError(f"num_thread: {exc}") from exc


class FilterModule:
    """Thread count filter."""

    def filters(self):
        return {"num_thread": num_thread}
