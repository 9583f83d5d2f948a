# Copyright: (c) 2025, AI Platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes memory/storage quantity to bytes."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: k8s_quantity_bytes
short_description: Convert a Kubernetes memory or storage quantity to bytes
version_added: 1.0.0
author: AI Platform team
description:
  - Parses a Kubernetes resource quantity such as C(2Gi), C(512Mi), C(5G) or C(1e9) and returns the
    number of bytes it stands for, rounded up to a whole byte.
  - Units that Kubernetes does not know (C(4GB), C(2 gigs)) and the milli suffix C(m), which is
    legal for Kubernetes but never meant for memory, are refused with an error that names the value.
positional: _input
options:
  _input:
    description: The quantity, as a string or a number of bytes.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Bytes of the memory limit
  ansible.builtin.debug:
    msg: "{{ '3Gi' | aiplatform.ollama.k8s_quantity_bytes }}"   # 3221225472

- name: Decimal units are powers of ten
  ansible.builtin.debug:
    msg: "{{ '5G' | aiplatform.ollama.k8s_quantity_bytes }}"    # 5000000000
"""

RETURN = r"""
_value:
  description: The quantity in bytes.
  type: int
"""

_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
# Same grammar as k8s.io/apimachinery resource.Quantity, minus the milli suffix.
_QUANTITY = re.compile(
    r"^\+?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)|[eE](?P<exp>[+-]?[0-9]+))?$"
)


def k8s_quantity_bytes(value):
    """Return the bytes a memory/storage quantity stands for; raise on anything Kubernetes would not take."""
    if isinstance(value, bool):
        raise AnsibleFilterError(f"k8s_quantity_bytes: {value!r} is not a quantity")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise AnsibleFilterError(
            f"k8s_quantity_bytes: {value!r} is not a Kubernetes memory quantity; "
            "write e.g. 512Mi, 4Gi or 4G (binary Ki/Mi/Gi/Ti or decimal k/M/G/T, no 'B')"
        )
    try:
        number = Decimal(match.group("num"))
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise AnsibleFilterError(f"k8s_quantity_bytes: {value!r}: {exc}") from exc
    if match.group("exp") is not None:
        number *= Decimal(10) ** int(match.group("exp"))
    else:
        number *= _SUFFIX[match.group("suffix") or ""]
    return int(number.to_integral_value(rounding="ROUND_CEILING"))


class FilterModule:
    """Kubernetes quantity filters."""

    def filters(self):
        return {"k8s_quantity_bytes": k8s_quantity_bytes}
