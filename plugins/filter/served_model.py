# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The model name clients are served: the thread-aligned derived model, or the base model."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.served_model import ServedModelError
from ansible_collections.aiplatform.ollama.plugins.module_utils.served_model import served_model as _served_model

DOCUMENTATION = r"""
name: served_model
short_description: The model name clients are served for a deployment's model, CPU limit and thread alignment
version_added: 1.2.0
author: AI Platform team
description:
  - With thread alignment on (any C(ollama_flux_thread_alignment) but C(off)), the deployment serves a
    model derived from the base one with C(num_thread) set to the whole CPUs of the limit, named after
    it with C(-t<threads>) appended to the tag (C(qwen2.5:72b) at C(2000m) is C(qwen2.5:72b-t2)).
    With alignment C(off) clients ask for the base model.
  - The C(ollama_flux) role's deployment, C(inference_check) and C(diagnose) all name the served
    model with this filter, so a verification run on its own probes what clients use.
positional: _input
options:
  _input:
    description: The deployment's model reference (C(ollama_flux_model)).
    type: str
    required: true
  cpu_limit:
    description: The Ollama container's CPU limit (C(ollama_flux_cpu_limit)).
    type: raw
    required: true
  alignment:
    description: C(ollama_flux_thread_alignment) - C(auto), C(seed), C(chart_create) or C(off).
    type: str
    default: auto
"""

EXAMPLES = r"""
- name: The model kagent asks for in prod
  ansible.builtin.debug:
    msg: "{{ 'qwen2.5:72b' | aiplatform.ollama.served_model(cpu_limit='2000m') }}"   # qwen2.5:72b-t2
"""

RETURN = r"""
_value:
  description: The model name as Ollama lists it.
  type: str
"""


def served_model(model, cpu_limit, alignment="auto"):
    try:
        return _served_model(model, cpu_limit, alignment)
    except ServedModelError as exc:
        raise AnsibleFilterError(f"served_model: {exc}") from exc


class FilterModule:
    """Served model filter."""

    def filters(self):
        return {"served_model": served_model}
