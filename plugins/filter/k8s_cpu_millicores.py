# Copyright: (c) 2025, AI Platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes CPU quantity to millicores."""

from __future__ import annotations

import re
from decimal import Decimal

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: k8s_cpu_millicores
short_description: Convert a Kubernetes CPU quantity to millicores
version_added: 1.0.0
author: AI Platform team
description:
  - Parses a Kubernetes CPU quantity such as C(500m), C(2) or C(1.5) and returns millicores as an
    integer (C(2) gives C(2000)).
  - Anything else (C(2 cores), C(2c), C(1000mc)) is refused with an error that names the value.
  - Kubernetes itself rounds CPU below one millicore up; so does this filter.
positional: _input
options:
  _input:
    description: The CPU quantity, as a string or a number of cores.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Millicores of the CPU limit
  ansible.builtin.debug:
    msg: "{{ '2' | aiplatform.ollama.k8s_cpu_millicores }}"      # 2000

- name: Whole CPUs the container may use, the thread count that matches the CFS quota
  ansible.builtin.debug:
    msg: "{{ (('1500m' | aiplatform.ollama.k8s_cpu_millicores) // 1000, 1) | max }}"   # 1
"""

RETURN = r"""
_value:
  description: The quantity in millicores.
  type: int
"""

_CPU = re.compile(r"^\+?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<milli>m)?$")


def k8s_cpu_millicores(value):
    """Return millicores for a CPU quantity; raise on anything that is not one."""
    if isinstance(value, bool):
        raise AnsibleFilterError(f"k8s_cpu_millicores: {value!r} is not a CPU quantity")
    text = str(value).strip()
    match = _CPU.match(text)
    if not match:
        raise AnsibleFilterError(
            f"k8s_cpu_millicores: {value!r} is not a Kubernetes CPU quantity; write e.g. 500m, 2 or 1.5"
        )
    number = Decimal(match.group("num"))
    if not match.group("milli"):
        number *= 1000
    return int(number.to_integral_value(rounding="ROUND_CEILING"))


class FilterModule:
    """Kubernetes CPU filters."""

    def filters(self):
        return {"k8s_cpu_millicores": k8s_cpu_millicores}
