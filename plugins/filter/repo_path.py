# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A path inside the GitOps repository, checked to stay inside it."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.safe_names import repo_path
from ansible_collections.aiplatform.ollama.plugins.plugin_utils.name_filter import name_filter

DOCUMENTATION = r"""
name: repo_path
short_description: Refuse a repository path that is absolute, climbs out or holds anything but plain segments
version_added: 1.2.0
author: AI Platform team
description:
  - Returns the path, without leading or trailing slashes, when it is relative and made of plain
    segments (letters, digits, C(.), C(_), C(-)) without C(..); fails naming the variable otherwise.
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
- name: The application's directory in the Flux repository
  ansible.builtin.set_fact:
    app_path: "{{ ollama_flux_gitops_app_path | aiplatform.ollama.repo_path(variable='ollama_flux_gitops_app_path') }}"
"""

RETURN = r"""
_value:
  description: The path, without leading or trailing slashes.
  type: str
"""


class FilterModule:
    """Refuse a repository path that is absolute, climbs out or holds anything but plain segments."""

    def filters(self):
        return {"repo_path": name_filter(repo_path)}
