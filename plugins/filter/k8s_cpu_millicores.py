# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubernetes CPU quantity to millicores."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_quantity import QuantityError, cpu_millicores

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

- name: Compare a request with a limit
  ansible.builtin.debug:
    msg: "{{ ('500m' | aiplatform.ollama.k8s_cpu_millicores) <= ('1' | aiplatform.ollama.k8s_cpu_millicores) }}"
"""

RETURN = r"""
_value:
  description: The quantity in millicores.
  type: int
"""


def k8s_cpu_millicores(value):
    """Return millicores for a CPU quantity; raise on anything that is not one."""
    try:
        return cpu_millicores(value)
    except QuantityError as exc:
        raise AnsibleFilterError(f"k8s_cpu_millicores: {exc}") from exc


class FilterModule:
    """Kubernetes CPU filters."""

    def filters(self):
        return {"k8s_cpu_millicores": k8s_cpu_millicores}
