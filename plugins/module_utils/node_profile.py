# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a CPU inference node can do, read from /proc and /sys.

Pure parsing functions plus one reader that walks a root directory, so the same code runs on a
node (root ``/``) and in unit tests against recorded outputs of other CPU families.
Standard library only: it runs on the target without extra packages.

The root is a test seam, not a module option: node_profile_facts reads it from the environment
variable NODE_ROOT_ENV (``AIPLATFORM_OLLAMA_NODE_ROOT``, see root_from_environment), unset on a real
node so ``/`` is read. Tests set it to a recorded tree under tests/unit/node_samples. A user
has no reason to point the module anywhere else: the profile, its memory budget and the bandwidth
measurement all describe the machine the module runs on.
"""

from __future__ import annotations

import glob
import os
import re

from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_quantity import (
    cpu_millicores,
    memory_bytes,
    num_thread,
)

ISA_FLAGS = {
    "avx2": ("avx2",),
    "avx512f": ("avx512f",),
    "avx512_vnni": ("avx512_vnni",),
    "avx_vnni": ("avx_vnni",),
    "amx": ("amx_tile", "amx_int8", "amx_bf16"),
}

# Flags worth showing in an error message: the SIMD family that decides llama.cpp's kernels.
_REPORTED_FLAG = re.compile(r"^(sse4_[12]|ssse3|avx.*|fma|f16c|amx.*)$")

GIB = 1024 ** 3

NODE_ROOT_ENV = "AIPLATFORM_OLLAMA_NODE_ROOT"


def root_from_environment():
    """The directory holding the ``proc`` and ``sys`` to read: NODE_ROOT_ENV, else ``/``."""
    return os.environ.get(NODE_ROOT_ENV) or "/"


CONTAINER_MARKERS = (
    ("run/.containerenv", "podman"),
    (".dockerenv", "docker"),
)


def parse_cpulist(text):
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11]."""
    cpus = []
    for part in (text or "").strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.extend(range(int(low), int(high) + 1))
        else:
            cpus.append(int(part))
    return sorted(set(cpus))


def format_cpulist(cpus):
    """[0, 1, 2, 5] -> '0-2,5' (the kernel's and kubelet's notation)."""
    cpus = sorted(set(cpus))
    ranges = []
    start = prev = None
    for cpu in cpus:
        if start is None:
            start = prev = cpu
        elif cpu == prev + 1:
            prev = cpu
        else:
            ranges.append((start, prev))
            start = prev = cpu
    if start is not None:
        ranges.append((start, prev))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def parse_cpuinfo(text):
    """Split /proc/cpuinfo into one dict per logical CPU (keys as the kernel prints them)."""
    processors = []
    current = {}
    for line in (text or "").splitlines():
        if not line.strip():
            if "processor" in current:
                processors.append(current)
            current = {}
            continue
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        key = key.strip()
        value = value.strip()
        if key == "processor" and "processor" in current:
            processors.append(current)
            current = {}
        current[key] = value
    if "processor" in current:
        processors.append(current)
    return processors


def parse_meminfo(text):
    """/proc/meminfo -> {field: bytes}."""
    values = {}
    for line in (text or "").splitlines():
        match = re.match(r"^([^:]+):\s+(\d+)(?:\s+kB)?\s*$", line)
        if match:
            amount = int(match.group(2))
            values[match.group(1)] = amount * 1024 if line.rstrip().endswith("kB") else amount
    return values


def parse_swaps(text):
    """/proc/swaps -> [{'device', 'type', 'size_bytes'}] of active swap areas."""
    swaps = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3:
            swaps.append({"device": fields[0], "type": fields[1], "size_bytes": int(fields[2]) * 1024})
    return swaps


def parse_bracketed(text):
    """'always [madvise] never' -> 'madvise' (THP and similar sysfs selectors)."""
    match = re.search(r"\[([^\]]+)\]", text or "")
    return match.group(1) if match else None


def parse_cpu_quantity(value):
    """Kubernetes CPU quantity ('2000m', '2', 1.5) -> float CPUs; '' or None -> None."""
    if value is None or str(value).strip() == "":
        return None
    return cpu_millicores(value) / 1000.0


def parse_memory_quantity(value):
    """Kubernetes memory quantity ('4Gi', '3G', '512Mi', 1073741824) -> int bytes; '' or None -> None."""
    if value is None or str(value).strip() == "":
        return None
    return memory_bytes(value)


def cpu_topology(processors, sysfs_topology=None):
    """Sockets, physical cores and threads per core from cpuinfo (or sysfs when cpuinfo lacks ids).

    sysfs_topology: {cpu: {'physical_package_id': int, 'core_id': int}} read from
    /sys/devices/system/cpu/cpuN/topology, preferred because it exists on every architecture.
    """
    cores = {}
    for index, proc in enumerate(processors):
        cpu = int(proc.get("processor", index))
        topo = (sysfs_topology or {}).get(cpu)
        if topo:
            package, core = topo["physical_package_id"], topo["core_id"]
        elif "physical id" in proc and "core id" in proc:
            package, core = int(proc["physical id"]), int(proc["core id"])
        else:
            # Without ids (some ARM and VM kernels) every logical CPU counts as its own core.
            package, core = 0, cpu
        cores.setdefault((package, core), []).append(cpu)
    sockets = sorted({key[0] for key in cores})
    physical_cores = len(cores)
    logical = sum(len(cpus) for cpus in cores.values())
    threads_per_core = max((len(cpus) for cpus in cores.values()), default=1)
    return {
        "sockets": len(sockets),
        "physical_cores": physical_cores,
        "cores_per_socket": physical_cores // len(sockets) if sockets else 0,
        "logical_cpus": logical,
        "threads_per_core": threads_per_core,
        "smt_active": threads_per_core > 1,
        "core_map": {f"{key[0]}:{key[1]}": sorted(cpus) for key, cpus in sorted(cores.items())},
    }


def isa_summary(flags):
    return {name: all(flag in flags for flag in needed) if name != "amx" else any(flag in flags for flag in needed)
            for name, needed in ISA_FLAGS.items()}


def reported_flags(flags):
    return sorted(flag for flag in flags if _REPORTED_FLAG.match(flag))


def isa_failure(profile, required):
    """None when every required ISA extension is present, else the message that names what was found."""
    missing = [name for name in required if not profile["isa"].get(name, name in profile["flags"])]
    if not missing:
        return None
    found = " ".join(profile["simd_flags"]) or "none"
    # the fix names what is missing (required_isa may ask for more than AVX2), and the option both as
    # the module takes it and as the node_tuning role passes it, since most runs come through the role
    wanted = ", ".join(missing) + (" (AVX2 is x86-64-v3)" if "avx2" in missing else "")
    return (
        "CPU {!r} lacks {}, which Ollama's CPU backend needs for usable decode speed; "
        "SIMD flags found: {}. Use a node with {}, or set isa_policy: warn "
        "(node_tuning_isa_policy: warn in the node_tuning role) to go on anyway.".format(
            profile["cpu_model"], ", ".join(missing), found, wanted)
    )


def recommended_num_thread(profile, cpu_limit):
    """Threads Ollama should use on this node for the pod's CPU limit (k8s_quantity.num_thread)."""
    return num_thread(cpu_limit, profile["physical_cores"], profile["numa_nodes"])


def memory_budget(mem_total, reserved):
    """Bytes a pod may use: MemTotal minus what the OS, kubelet and system daemons keep.

    'auto' keeps max(2 GiB, 10 % of MemTotal), close to what kubeadm nodes reserve plus eviction headroom.
    """
    auto = reserved in (None, "", "auto")
    keep = max(2 * GIB, mem_total // 10) if auto else parse_memory_quantity(reserved)
    return max(0, mem_total - keep), keep


def suggest_reserved_cpus(profile):
    """The first physical core (with its SMT siblings) of every NUMA node, for kubelet's reservedSystemCPUs.

    One core per NUMA node keeps the allocatable cores of each node equal, which the one-pod-per-NUMA-node
    layout needs.
    """
    reserved = []
    for cpus in profile["numa_node_cpus"].values():
        first = cpus[0] if cpus else None
        if first is None:
            continue
        for siblings in profile["core_map"].values():
            if first in siblings:
                reserved.extend(siblings)
                break
    return format_cpulist(reserved)


def _read(root, path, default=None):
    try:
        with open(os.path.join(root, path.lstrip("/"))) as handle:
            return handle.read()
    except OSError:
        return default


def _writable(root, path):
    return os.access(os.path.join(root, path.lstrip("/")), os.W_OK)


def detect_virtualization(root, processors, flags):
    """{'container': name or None, 'vm': hypervisor or None, 'bare_metal': bool}."""
    container = None
    marker = (_read(root, "/run/systemd/container") or "").strip()
    if marker:
        container = marker
    if container is None:
        environ = _read(root, "/proc/1/environ") or ""
        for entry in environ.split("\0"):
            if entry.startswith("container="):
                container = entry.split("=", 1)[1] or "unknown"
                break
    if container is None:
        for path, name in CONTAINER_MARKERS:
            if os.path.exists(os.path.join(root, path)):
                container = name
                break
    vm = None
    if "hypervisor" in flags:
        vendor = (_read(root, "/sys/class/dmi/id/sys_vendor") or "").strip()
        product = (_read(root, "/sys/class/dmi/id/product_name") or "").strip()
        vm = " ".join(part for part in (vendor, product) if part) or "unknown hypervisor"
    return {"container": container, "vm": vm, "bare_metal": container is None and vm is None}


def read_cpufreq(root):
    paths = sorted(glob.glob(os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor")))
    if not paths:
        return {"available": False, "driver": None, "governors": [], "current": [],
                "reason": "no cpufreq driver exposes /sys/devices/system/cpu/cpu*/cpufreq "
                          "(typical in VMs and with firmware-controlled P-states)"}
    current = sorted({(_read(root, os.path.relpath(path, root)) or "").strip() for path in paths})
    cpu0 = "sys/devices/system/cpu/cpu0/cpufreq/"
    return {
        "available": True,
        "driver": (_read(root, cpu0 + "scaling_driver") or "").strip() or None,
        "governors": (_read(root, cpu0 + "scaling_available_governors") or "").split(),
        "current": current,
        "writable": all(os.access(path, os.W_OK) for path in paths),
        "reason": None,
    }


def read_numa(root):
    nodes = {}
    for path in sorted(glob.glob(os.path.join(root, "sys/devices/system/node/node[0-9]*"))):
        name = os.path.basename(path)
        cpus = parse_cpulist(_read(root, os.path.relpath(os.path.join(path, "cpulist"), root)) or "")
        if cpus:
            nodes[int(name[4:])] = cpus
    return nodes


def read_sysfs_topology(root):
    topology = {}
    for path in glob.glob(os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*/topology")):
        cpu = int(os.path.basename(os.path.dirname(path))[3:])
        package = _read(root, os.path.relpath(os.path.join(path, "physical_package_id"), root))
        core = _read(root, os.path.relpath(os.path.join(path, "core_id"), root))
        if package is not None and core is not None:
            topology[cpu] = {"physical_package_id": int(package), "core_id": int(core)}
    return topology


def read_sysctls(root, keys):
    """{key: {'value', 'exists', 'writable'}} straight from /proc/sys (no sysctl binary needed)."""
    result = {}
    for key in keys:
        path = "/proc/sys/" + key.replace(".", "/")
        value = _read(root, path)
        result[key] = {
            "value": " ".join(value.split()) if value is not None else None,
            "exists": value is not None,
            "writable": value is not None and _writable(root, path),
        }
    return result


def read_thp(root):
    base = "/sys/kernel/mm/transparent_hugepage/"
    enabled = _read(root, base + "enabled")
    return {
        "available": enabled is not None,
        "enabled": parse_bracketed(enabled),
        "defrag": parse_bracketed(_read(root, base + "defrag")),
        "writable": enabled is not None and _writable(root, base + "enabled"),
    }


def build_profile(root="/", cpu_limit=None, memory_reserved="auto", sysctl_keys=()):
    """Everything the role decides on, as one JSON-able dict."""
    processors = parse_cpuinfo(_read(root, "/proc/cpuinfo", ""))
    if not processors:
        raise ValueError("no processors found in {}".format(os.path.join(root, "proc/cpuinfo")))
    first = processors[0]
    flags = set((first.get("flags") or first.get("Features") or "").split())
    topology = cpu_topology(processors, read_sysfs_topology(root))
    numa = read_numa(root) or {0: sorted(cpu for cpus in topology["core_map"].values() for cpu in cpus)}
    meminfo = parse_meminfo(_read(root, "/proc/meminfo", ""))
    swaps = parse_swaps(_read(root, "/proc/swaps", ""))
    mem_total = meminfo.get("MemTotal", 0)
    budget, kept = memory_budget(mem_total, memory_reserved)

    profile = {
        "cpu_model": first.get("model name") or first.get("Model") or first.get("cpu model") or "unknown",
        "cpu_vendor": first.get("vendor_id") or first.get("CPU implementer") or "unknown",
        "flags": sorted(flags),
        "simd_flags": reported_flags(flags),
        "isa": isa_summary(flags),
        "numa_nodes": len(numa),
        "numa_node_cpus": {str(node): cpus for node, cpus in sorted(numa.items())},
        "memory_total_bytes": mem_total,
        "memory_available_bytes": meminfo.get("MemAvailable", 0),
        "swap_total_bytes": meminfo.get("SwapTotal", 0),
        "swap_devices": swaps,
        "swap_active": bool(swaps) or meminfo.get("SwapTotal", 0) > 0,
        "cpufreq": read_cpufreq(root),
        "thp": read_thp(root),
        "virtualization": detect_virtualization(root, processors, flags),
        "sysctl": read_sysctls(root, sysctl_keys),
    }
    profile.update(topology)
    profile["cpus_per_numa_node"] = profile["logical_cpus"] // max(1, profile["numa_nodes"])
    profile["physical_cores_per_numa_node"] = profile["physical_cores"] // max(1, profile["numa_nodes"])
    profile["cpu_limit"] = parse_cpu_quantity(cpu_limit)
    profile["recommended_num_thread"] = recommended_num_thread(profile, cpu_limit)
    profile["memory_reserved_bytes"] = kept
    profile["memory_budget_bytes"] = budget
    profile["memory_budget_gib"] = round(budget / float(GIB), 1)
    profile["memory_per_numa_node_bytes"] = mem_total // max(1, profile["numa_nodes"])
    profile["suggested_reserved_cpus"] = suggest_reserved_cpus(profile)
    return profile
