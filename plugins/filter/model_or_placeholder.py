# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A model a GitOps file names: a model reference, or one Flux placeholder that cluster-vars fills in."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.safe_names import model_or_placeholder
from ansible_collections.aiplatform.ollama.plugins.plugin_utils.name_filter import name_filter

DOCUMENTATION = r"""
name: model_or_placeholder
short_description: Refuse a model for a GitOps file that is neither a model reference nor one Flux placeholder
version_added: 1.2.0
author: AI Platform team
description:
  - Returns the value when it is exactly one Flux substitution placeholder, C(${NAME}) with NAME made of
    C(A-Z), C(0-9) and C(_) (for example C(${OLLAMA_MODEL}), which Flux fills from cluster-vars), or a
    model reference the P(aiplatform.ollama.model_ref#filter) filter accepts.
  - Fails naming the variable otherwise, so that no model written into a manifest can carry C($(...)),
    backticks, quotes, C({{), a newline, C(../) or a placeholder mixed with other text.
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
- name: Refuse a model of the rendered seed Job before anything is written
  ansible.builtin.set_fact:
    models: "{{ model_cache_gitops_models | map('aiplatform.ollama.model_or_placeholder',
                                                variable='model_cache_gitops_models') | list }}"
"""

RETURN = r"""
_value:
  description: The value, unchanged.
  type: str
"""


class FilterModule:
    """Refuse a model for a GitOps file that is neither a model reference nor one Flux placeholder."""

    def filters(self):
        return {"model_or_placeholder": name_filter(model_or_placeholder)}
