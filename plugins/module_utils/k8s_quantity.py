# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Kubernetes resource quantities (CPU and memory/storage), parsed once for every role and module.

The grammar is k8s.io/apimachinery's resource.Quantity. Memory refuses the milli suffix, which
Kubernetes accepts but nobody means for bytes; both round up, as Kubernetes does.
"""

from __future__ import annotations

import re
from decimal import Decimal

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError

_BYTE_SUFFIX = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_MEMORY = re.compile(
    r"^\+?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)|[eE](?P<exp>[+-]?[0-9]+))?$"
)
_CPU = re.compile(r"^\+?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<milli>m)?$")


# the forms each parser accepts, in every message that refuses a value, so the fix is in the message
_MEMORY_FORMS = "write e.g. 512Mi, 4Gi or 4G (binary Ki/Mi/Gi/Ti or decimal k/M/G/T, no 'B')"
_CPU_FORMS = "write e.g. 500m, 2 or 1.5 (millicores with an m, or cores, whole or decimal)"


class QuantityError(InputError):
    """A value that is not the quantity expected; the message names it and the accepted forms."""


def memory_bytes(value) -> int:
    """'4Gi' -> 4294967296, '5G' -> 5000000000, an int is already bytes."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a Kubernetes memory quantity; {_MEMORY_FORMS}")
    if isinstance(value, int):
        return value
    match = _MEMORY.match(str(value).strip())
    if not match:
        raise QuantityError(f"{value!r} is not a Kubernetes memory quantity; {_MEMORY_FORMS}")
    number = Decimal(match.group("num"))
    if match.group("exp") is not None:
        number *= Decimal(10) ** int(match.group("exp"))
    else:
        number *= _BYTE_SUFFIX[match.group("suffix") or ""]
    return int(number.to_integral_value(rounding="ROUND_CEILING"))


def cpu_millicores(value) -> int:
    """'500m' -> 500, '2' -> 2000, 1.5 -> 1500."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a Kubernetes CPU quantity; {_CPU_FORMS}")
    match = _CPU.match(str(value).strip())
    if not match:
        raise QuantityError(f"{value!r} is not a Kubernetes CPU quantity; {_CPU_FORMS}")
    number = Decimal(match.group("num"))
    if not match.group("milli"):
        number *= 1000
    return int(number.to_integral_value(rounding="ROUND_CEILING"))


def num_thread(cpu_limit, physical_cores: int | None = None, numa_nodes: int = 1) -> int:
    """The threads Ollama should use for a pod's CPU limit: whole CPUs of the limit, at least one.

    llama.cpp defaults to the host's physical cores and ignores the CFS quota, and more threads than
    the quota grants collapses throughput. Where the node is known, its physical cores cap it (SMT
    siblings add no memory bandwidth), and on multi-NUMA nodes one node's cores, since one pod per
    NUMA node is the layout. Without a limit, the cap alone.
    """
    cap = None
    if physical_cores:
        cap = max(1, physical_cores // max(1, numa_nodes))
    if cpu_limit in (None, ""):
        if cap is None:
            raise QuantityError("neither a CPU limit nor the node's cores are known: set the CPU limit")
        return cap
    whole = max(1, cpu_millicores(cpu_limit) // 1000)
    return whole if cap is None else min(cap, whole)
