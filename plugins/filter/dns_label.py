# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A Kubernetes object name the roles write, checked to be a DNS label."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.safe_names import dns_label
from ansible_collections.aiplatform.ollama.plugins.plugin_utils.name_filter import name_filter

DOCUMENTATION = r"""
name: dns_label
short_description: Refuse an object name that is not a DNS label, naming the variable
version_added: 1.2.0
author: AI Platform team
description:
  - Returns the value when it is a DNS label (RFC 1123) of at most 63 characters - what a namespace
    needs - and fails naming the variable otherwise, so that no name can carry C($(...)), quotes,
    C(${...}), a newline or a slash into a manifest, a script or a path.
positional: _input
options:
  _input:
    description: The value to check.
    type: str
    required: true
  variable:
    description: The variable the value came from, named in the error.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Refuse a namespace before anything is applied
  ansible.builtin.set_fact:
    namespace: "{{ model_cache_namespace | aiplatform.ollama.dns_label(variable='model_cache_namespace') }}"
"""

RETURN = r"""
_value:
  description: The value, unchanged.
  type: str
"""


class FilterModule:
    """Refuse an object name that is not a DNS label, naming the variable."""

    def filters(self):
        return {"dns_label": name_filter(dns_label)}
