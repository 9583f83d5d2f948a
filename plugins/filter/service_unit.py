# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The hardened systemd unit of the Ollama service, with every setting checked first."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.service_unit import ServiceUnitError, render_unit

DOCUMENTATION = r"""
name: service_unit
short_description: Render the hardened systemd unit that runs Ollama, refusing a setting it cannot use
version_added: 1.2.0
author: AI Platform team
description:
  - Checks the service's settings and renders the unit the C(ollama_service) role writes, with
    C(OLLAMA_HOST), C(OLLAMA_MODELS), C(OLLAMA_NOPRUNE), keep-alive, parallel slots and context, C(CPUQuota)
    (and C(AllowedCPUs)), C(MemoryMax), C(LimitMEMLOCK) and a sandbox that C(systemd-analyze security) rates
    below 2.0.
  - Refuses, naming the variable and the fix, a bind address beyond loopback without C(allow_remote), a
    path the sandbox would hide, less than one CPU and a memory limit the server cannot start in.
  - The thread count the served model is aligned to comes from the CPUs the unit may use with the formula
    of P(aiplatform.ollama.num_thread#filter).
positional: _input
options:
  _input:
    description:
      - The settings - C(host), C(allow_remote), C(ip_address_allow), C(cpus), C(cpuset), C(memory_max) (a
        quantity or V(auto)), C(install_dir), C(state_dir), C(store_path), C(user), C(num_parallel),
        C(context_length), C(keep_alive), C(max_loaded_models), C(environment), C(memory_deny_write_execute).
    type: dict
    required: true
  physical_cores:
    description: The host's physical cores, which cap the threads.
    type: int
  numa_nodes:
    description: The host's NUMA nodes.
    type: int
    default: 1
  model_memory_bytes:
    description: The memory each model needs (the preflight's sizing); C(memory_max=auto) takes the largest.
    type: list
    elements: int
"""

EXAMPLES = r"""
- name: Render the unit for two CPUs and 8Gi on loopback
  ansible.builtin.debug:
    msg: >-
      {{ {'host': '127.0.0.1:11434', 'cpus': '2', 'memory_max': '8Gi', 'install_dir': '/opt/ollama',
          'state_dir': '/var/lib/ollama', 'store_path': '/var/lib/ollama/models', 'user': 'ollama'}
         | aiplatform.ollama.service_unit }}
"""

RETURN = r"""
_value:
  description: The unit and what it implies.
  type: dict
  contains:
    unit:
      description: The unit file's text.
      type: str
    num_thread:
      description: Threads of the served model.
      type: int
    cpu_quota_pct:
      description: C(CPUQuota) in percent of one CPU, or null without a quota.
      type: int
    memory_max_bytes:
      description: C(MemoryMax) in bytes.
      type: int
    url:
      description: The URL a client on the host reaches the server at.
      type: str
"""


def service_unit(settings, physical_cores=None, numa_nodes=1, model_memory_bytes=None):
    try:
        return render_unit(settings, physical_cores, numa_nodes or 1, model_memory_bytes)
    except ServiceUnitError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """The Ollama service's unit."""

    def filters(self):
        return {"service_unit": service_unit}
