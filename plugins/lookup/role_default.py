# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The default a role of this collection gives one of its variables, for the other roles that read it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: role_default
short_description: The default a role of this collection gives one of its variables
version_added: 1.2.0
author:
  - AI Platform team (@aiplatform)
description:
  - Reads the variable from the C(defaults/main.yml) of the role whose name prefixes it
    (C(ollama_flux_cpu_limit) is the C(ollama_flux) role's), in this collection as installed.
  - The roles that read another role's variable fall back to it, C(ollama_flux_cpu_limit | default(lookup(...))),
    rather than to a copy of its value, so the two cannot disagree when the inventory leaves it unset.
  - A variable no role defines, or whose default is a template, is refused.
options:
  _terms:
    description: Variable names.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The CPU limit the Ollama pod gets when the inventory sets none
  ansible.builtin.debug:
    msg: "{{ ollama_flux_cpu_limit | default(lookup('aiplatform.ollama.role_default', 'ollama_flux_cpu_limit')) }}"
"""

RETURN = r"""
_raw:
  description: Each variable's default, as its role's defaults file has it (a string, number, list or mapping).
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.plugin_utils.role_defaults import RoleDefaultError, role_default  # noqa: E402


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [role_default(term) for term in terms]
        except RoleDefaultError as exc:
            raise AnsibleLookupError(f"role_default: {exc}") from exc
