#!/usr/bin/python
# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_profile_facts
short_description: Report what a CPU-only node offers for LLM inference
version_added: 1.0.0
description:
  - Reads C(/proc/cpuinfo), C(/proc/meminfo), C(/proc/swaps), C(/proc/sys) and C(/sys) on the target and
    publishes one fact, C(ollama_node_profile), with sockets, physical cores, threads per core, NUMA nodes,
    ISA extensions (AVX2, AVX-512F, AVX-512 VNNI, AMX), memory, swap, cpufreq, transparent hugepages and
    virtualization or container detection.
  - Adds the recommended Ollama C(num_thread) for a CPU limit and the memory budget left for the Ollama pod.
  - Fails, or warns, when a required ISA extension is missing, naming the CPU model and the SIMD flags found.
  - Changes nothing on the target. Needs no package beyond Python's standard library.
author:
  - AI Platform team (@aiplatform)
options:
  cpu_limit:
    description:
      - CPU limit of the Ollama container as a Kubernetes quantity (V(2000m), V(4)).
      - Empty means the whole node (one NUMA node's physical cores on multi-NUMA nodes).
    type: str
    default: ""
  memory_reserved:
    description:
      - Memory kept for the OS, kubelet and system daemons, as a Kubernetes quantity (V(4Gi)).
      - V(auto) keeps max(2 GiB, 10% of MemTotal).
    type: str
    default: auto
  required_isa:
    description:
      - ISA extensions the node must have. Names are V(avx2), V(avx512f), V(avx512_vnni), V(avx_vnni),
        V(amx) or any raw C(/proc/cpuinfo) flag.
    type: list
    elements: str
    default: [avx2]
  isa_policy:
    description:
      - V(fail) stops on a node without a required extension, V(warn) reports it and goes on,
        V(ignore) only records it in the profile.
    type: str
    choices: [fail, warn, ignore]
    default: fail
  sysctl_keys:
    description:
      - Kernel settings whose current value, existence and writability are read from C(/proc/sys).
    type: list
    elements: str
    default: [vm.swappiness, kernel.numa_balancing, vm.overcommit_memory]
  root:
    description:
      - Directory holding C(proc) and C(sys) to read, for a mounted image or recorded outputs.
    type: path
    default: /
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to compare.
  facts:
    support: full
    description: Sets C(ollama_node_profile).
notes:
  - Inside a container C(/proc/sys) and C(/sys) are mostly the host's; the profile says so in
    C(ollama_node_profile.virtualization.container) so callers can skip live changes.
"""

EXAMPLES = r"""
- name: Profile the node for a 2-CPU Ollama pod
  aiplatform.ollama.node_profile_facts:
    cpu_limit: 2000m

- name: Warn instead of failing on CPUs without AVX2
  aiplatform.ollama.node_profile_facts:
    isa_policy: warn

- name: Show the recommendation
  ansible.builtin.debug:
    msg: "num_thread={{ ollama_node_profile.recommended_num_thread }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    ollama_node_profile:
      description: The node's inference profile.
      returned: always
      type: dict
      contains:
        cpu_model:
          description: Model name from C(/proc/cpuinfo).
          type: str
          sample: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz
        sockets:
          description: CPU packages.
          type: int
          sample: 2
        physical_cores:
          description: Physical cores over all sockets.
          type: int
          sample: 40
        threads_per_core:
          description: Logical CPUs per physical core (2 with SMT on).
          type: int
          sample: 2
        logical_cpus:
          description: Online logical CPUs.
          type: int
          sample: 80
        numa_nodes:
          description: NUMA nodes that have CPUs.
          type: int
          sample: 2
        numa_node_cpus:
          description: Logical CPUs of each NUMA node.
          type: dict
          sample: {"0": [0, 1, 2], "1": [3, 4, 5]}
        isa:
          description: Presence of the ISA extensions that matter for llama.cpp kernels.
          type: dict
          sample: {"avx2": true, "avx512f": true, "avx512_vnni": true, "avx_vnni": false, "amx": false}
        simd_flags:
          description: SIMD-related flags of the CPU.
          type: list
          elements: str
          sample: [avx, avx2, avx512f, fma]
        memory_total_bytes:
          description: MemTotal.
          type: int
        swap_active:
          description: Whether any swap area is active.
          type: bool
        cpufreq:
          description: Whether cpufreq exists, its driver, available and current governors, and why not.
          type: dict
        thp:
          description: Transparent hugepage mode and defrag setting.
          type: dict
        virtualization:
          description: Container name, hypervisor and whether the node is bare metal.
          type: dict
          sample: {"container": "podman", "vm": null, "bare_metal": false}
        sysctl:
          description: Current value, existence and writability of each key of O(sysctl_keys).
          type: dict
        recommended_num_thread:
          description: Ollama C(num_thread) for O(cpu_limit), capped by the physical cores of one NUMA node.
          type: int
          sample: 2
        memory_budget_bytes:
          description: MemTotal minus the memory reserved for the system.
          type: int
        suggested_reserved_cpus:
          description: First physical core of every NUMA node, for kubelet C(reservedSystemCPUs).
          type: str
          sample: "0,40"
ollama_node_profile:
  description: The profile, returned instead of the fact when the module fails on a missing ISA extension.
  returned: failed
  type: dict
isa_missing:
  description: Required ISA extensions the CPU lacks.
  returned: always
  type: list
  elements: str
  sample: []
isa_message:
  description: Why the node falls short of O(required_isa), naming the CPU model and SIMD flags; empty when it does not.
  returned: always
  type: str
  sample: ""
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.module_utils.node_profile import (  # noqa: E402
    build_profile,
    isa_failure,
)


def run_module():
    module = AnsibleModule(
        argument_spec={
            "cpu_limit": {"type": "str", "default": ""},
            "memory_reserved": {"type": "str", "default": "auto"},
            "required_isa": {"type": "list", "elements": "str", "default": ["avx2"]},
            "isa_policy": {"type": "str", "choices": ["fail", "warn", "ignore"], "default": "fail"},
            "sysctl_keys": {"type": "list", "elements": "str", "no_log": False,
                            "default": ["vm.swappiness", "kernel.numa_balancing", "vm.overcommit_memory"]},
            "root": {"type": "path", "default": "/"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        profile = build_profile(
            root=params["root"],
            cpu_limit=params["cpu_limit"],
            memory_reserved=params["memory_reserved"],
            sysctl_keys=params["sysctl_keys"],
        )
    except ValueError as exc:
        module.fail_json(msg=f"cannot build the node profile (cpu_limit={params['cpu_limit']!r}, "
                             f"memory_reserved={params['memory_reserved']!r}): {exc}")

    missing = [name for name in params["required_isa"]
               if not profile["isa"].get(name, name in profile["flags"])]
    message = isa_failure(profile, params["required_isa"])
    result = {
        "changed": False,
        "isa_missing": missing,
        "isa_message": message or "",
        "ansible_facts": {"ollama_node_profile": profile},
    }
    if message and params["isa_policy"] == "fail":
        # A failed node keeps no facts; the profile comes back for a rescue block to show.
        del result["ansible_facts"]
        module.fail_json(msg=message, ollama_node_profile=profile, **result)
    if message and params["isa_policy"] == "warn":
        module.warn(message)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
