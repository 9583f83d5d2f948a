# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""node_tuning's summary of a node's profile, as lines to print."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.tuning_report import profile_summary

DOCUMENTATION = r"""
name: node_profile_summary
short_description: A node's profile in four lines, as the node_tuning role prints it
version_added: 1.2.0
author: AI Platform team
description:
  - Takes the C(ollama_node_profile) fact of M(aiplatform.ollama.node_profile_facts) and says, in four lines, the
    CPU (sockets, cores, threads, NUMA nodes, ISA), the memory and the platform (swap, cpufreq, transparent
    hugepages; container, VM or bare metal), the C(num_thread) for the pod's CPU limit, and the memory bandwidth
    with where it comes from (measured, reused, or why not measured).
positional: _input
options:
  _input:
    description: The C(ollama_node_profile) fact.
    type: dict
    required: true
  container:
    description: The container engine the host runs in, empty on a host.
    type: str
    default: ""
  pod_cpu_limit:
    description: The Ollama pod's CPU limit the C(num_thread) is for (C(node_tuning_pod_cpu_limit)); empty when unset.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Show the node's profile
  ansible.builtin.debug:
    msg: "{{ ollama_node_profile | aiplatform.ollama.node_profile_summary(pod_cpu_limit='8') }}"
"""

RETURN = r"""
_value:
  description: The four lines.
  type: list
  elements: str
"""


def node_profile_summary(profile, container="", pod_cpu_limit=""):
    try:
        return profile_summary(profile, container or "", pod_cpu_limit or "")
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError(f"node_profile_summary: the input is not an ollama_node_profile fact "
                                 f"({type(exc).__name__}: {exc})") from exc


class FilterModule:
    """node profile summary filter."""

    def filters(self):
        return {"node_profile_summary": node_profile_summary}
