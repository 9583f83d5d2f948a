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
  - With O(measure_bandwidth), measures the node's memory bandwidth (STREAM's Copy kernel in one forked
    worker per physical core of one NUMA node, a few seconds), the ceiling of CPU decode speed, into
    C(ollama_node_profile.memory_bandwidth). An earlier measurement in O(bandwidth_facts_file) of the same
    hardware is reused instead, so a node is measured once.
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
  measure_bandwidth:
    description:
      - Measure the memory bandwidth of the machine the module runs on.
      - "Method: STREAM's Copy kernel (U(https://www.cs.virginia.edu/stream/ref.html)). One forked worker per
        physical core of the first NUMA node, bound to that node's cores, copies its own source array into its own
        destination array with one C(memcpy) (the source arrays together at least 256 MiB and 4 x the last-level
        caches); repetitions start together and run for O(bandwidth_seconds), 10 at least; the best is reported,
        counting bytes read plus bytes written. Processes, not threads: CPython holds the GIL while it copies."
      - Needs the source and destination arrays in memory for those seconds, at most a quarter of
        C(MemAvailable); a measurement that cannot run is reported in C(memory_bandwidth_status), never failed on.
    type: bool
    default: false
  bandwidth_workers:
    description:
      - Workers copying at once; V(0) is one per physical core of the first NUMA node.
    type: int
    default: 0
  bandwidth_seconds:
    description:
      - Seconds of timed repetitions after the untimed first copy.
    type: float
    default: 2.0
  bandwidth_facts_file:
    description:
      - A JSON file an earlier run left (the C(node_tuning) role's local facts file). Its C(memory_bandwidth) is
        reused instead of measuring again when it was taken with the same method on the same CPU model, CPU count,
        NUMA nodes and memory size.
    type: path
extends_documentation_fragment:
  - aiplatform.ollama.attributes
  - aiplatform.ollama.attributes.facts
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    details: Nothing changes, so there is nothing to compare.
  facts:
    support: full
    details: Sets C(ollama_node_profile).
  platform:
    platforms: linux
    support: full
    details: Runs on the node it profiles, whose C(/proc) and C(/sys) it reads.
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

- name: Measure the memory bandwidth once, reusing what an earlier run recorded
  aiplatform.ollama.node_profile_facts:
    measure_bandwidth: true
    bandwidth_facts_file: /etc/ansible/facts.d/ollama_node.fact

- name: Show it
  ansible.builtin.debug:
    msg: "{{ ollama_node_profile.memory_bandwidth.gb_per_s }} GB/s"
  when: ollama_node_profile.memory_bandwidth
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
        memory_bandwidth:
          description:
            - The measured memory bandwidth (see O(measure_bandwidth)); null when not measured.
            - C(bytes_per_s) and C(gb_per_s) are the best repetition, C(median_gb_per_s) the median; C(workers),
              C(cpus), C(array_bytes) (each worker's array), C(repetitions) and C(huge_pages) say how it was taken,
              C(method) and C(fingerprint) (CPU model, CPUs, NUMA nodes, memory GiB) when a later run may reuse it.
          type: dict
          sample:
            bytes_per_s: 31400000000
            gb_per_s: 31.4
            median_gb_per_s: 29.8
            method: stream-copy-fork-memcpy-v1
            workers: 2
            cpus: [0, 1]
            array_bytes: 134217728
            bytes_per_repetition: 536870912
            repetitions: 120
            huge_pages: true
            fingerprint: {cpu_model: AMD EPYC, logical_cpus: 2, numa_nodes: 1, memory_total_gib: 24}
        memory_bandwidth_status:
          description:
            - Where C(memory_bandwidth) comes from, C(source) V(measured), V(reused), V(skipped) or V(failed),
              with the C(reason) and the C(seconds) the measurement took.
          type: dict
          sample: {source: measured, reason: "/etc/ansible/facts.d/ollama_node.fact does not exist yet", seconds: 2.4}
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
error:
  description:
    - Why it failed, C(kind) V(invalid_input) (an option that cannot apply) or V(isa_missing) (with the C(cpu_model)).
  returned: failure
  type: dict
  sample: {kind: isa_missing, cpu_model: "Intel(R) Xeon(R) CPU E5-2680 v2 @ 2.80GHz"}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError, InputError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.memory_bandwidth import node_bandwidth  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.node_profile import (  # noqa: E402
    NODE_ROOT_ENV,
    build_profile,
    isa_failure,
    root_from_environment,
)


class IsaMissing(CollectionError):
    """The node lacks an extension of required_isa; `result` is what the failed task still returns."""

    default_kind = "isa_missing"

    def __init__(self, msg, result, **subject):
        super().__init__(msg, **subject)
        self.result = result


def profile_facts(module):
    """The task's result; InputError for options that cannot apply, IsaMissing under isa_policy fail."""
    params = module.params
    root = root_from_environment()
    if params["measure_bandwidth"] and root != "/":
        raise InputError(f"measure_bandwidth measures the machine the module runs on, but {NODE_ROOT_ENV} "
                         f"points the module at {root!r}, a recorded tree: set measure_bandwidth false, or "
                         f"unset {NODE_ROOT_ENV}")
    if params["bandwidth_workers"] < 0 or params["bandwidth_seconds"] < 0:
        raise InputError(f"bandwidth_workers ({params['bandwidth_workers']}) and bandwidth_seconds "
                         f"({params['bandwidth_seconds']}) must not be negative: use 0 for the defaults' "
                         "one worker per physical core and the minimum of repetitions")
    try:
        profile = build_profile(
            root=root,
            cpu_limit=params["cpu_limit"],
            memory_reserved=params["memory_reserved"],
            sysctl_keys=params["sysctl_keys"],
        )
    except ValueError as exc:
        raise InputError(f"cannot build the node profile (cpu_limit={params['cpu_limit']!r}, "
                         f"memory_reserved={params['memory_reserved']!r}): {exc}") from exc

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
        raise IsaMissing(message, dict(result, ollama_node_profile=profile), cpu_model=profile["cpu_model"])
    if message and params["isa_policy"] == "warn":
        module.warn(message)
    profile["memory_bandwidth"], profile["memory_bandwidth_status"] = node_bandwidth(
        profile, params["measure_bandwidth"], facts_file=params["bandwidth_facts_file"],
        workers=params["bandwidth_workers"], root=root, budget_seconds=params["bandwidth_seconds"])
    if profile["memory_bandwidth_status"]["source"] == "failed":
        module.warn(f"memory bandwidth not measured: {profile['memory_bandwidth_status']['reason']}")
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "cpu_limit": {"type": "str", "default": ""},
            "memory_reserved": {"type": "str", "default": "auto"},
            "required_isa": {"type": "list", "elements": "str", "default": ["avx2"]},
            "isa_policy": {"type": "str", "choices": ["fail", "warn", "ignore"], "default": "fail"},
            "sysctl_keys": {"type": "list", "elements": "str", "no_log": False,
                            "default": ["vm.swappiness", "kernel.numa_balancing", "vm.overcommit_memory"]},
            "measure_bandwidth": {"type": "bool", "default": False},
            "bandwidth_workers": {"type": "int", "default": 0},
            "bandwidth_seconds": {"type": "float", "default": 2.0},
            "bandwidth_facts_file": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        result = profile_facts(module)
    except CollectionError as err:
        done = err.result if isinstance(err, IsaMissing) else {}
        module.fail_json(msg=str(err), **dict(done, changed=False, error=err.details()))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
