# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubernetes memory/storage quantity to bytes."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_quantity import QuantityError, memory_bytes

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


def k8s_quantity_bytes(value):
    """Return the bytes a memory/storage quantity stands for; raise on anything Kubernetes would not take."""
    try:
        return memory_bytes(value)
    except QuantityError as exc:
        raise AnsibleFilterError(f"k8s_quantity_bytes: {exc}") from exc


class FilterModule:
    """Kubernetes quantity filters."""

    def filters(self):
        return {"k8s_quantity_bytes": k8s_quantity_bytes}
