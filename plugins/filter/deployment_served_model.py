# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The model a role after (or without) the deployment probes: published, else derived, else none."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.served_model import ServedModelError
from ansible_collections.aiplatform.ollama.plugins.module_utils.served_model import (
    deployment_served_model as _deployment_served_model,
)
from ansible_collections.aiplatform.ollama.plugins.plugin_utils.role_defaults import role_default

DOCUMENTATION = r"""
name: deployment_served_model
short_description: The model name a verification or diagnosis of the deployment probes
version_added: 1.2.0
author: AI Platform team
description:
  - The name the deployment published in this play (C(ollama_flux_served_model), set by the
    C(aiplatform.ollama.ollama_flux) role) when given; else the name P(aiplatform.ollama.served_model#filter) derives
    from the deployment's model, CPU limit and thread alignment; else an empty string when no model is
    named, so the role stops and names its variable instead of probing a model nobody asked for.
  - A CPU limit or alignment left unset (V(none)) is the C(ollama_flux) role's default, read from that
    role rather than copied, so a run of C(inference_check) or C(diagnose) alone names what the
    deployment serves.
  - C(inference_check) and C(diagnose) default their model to it.
positional: _input
options:
  _input:
    description: C(ollama_flux_served_model), or V(none) when it is not set.
    type: raw
    required: true
  model:
    description: C(ollama_flux_model), or V(none) when it is not set.
    type: raw
  cpu_limit:
    description: C(ollama_flux_cpu_limit), or V(none) for the C(ollama_flux) role's default.
    type: raw
  alignment:
    description: C(ollama_flux_thread_alignment), or V(none) for the C(ollama_flux) role's default.
    type: raw
"""

EXAMPLES = r"""
- name: The model a verification alone probes for the inventory's deployment
  ansible.builtin.debug:
    msg: >-
      {{ ollama_flux_served_model | default(none) | aiplatform.ollama.deployment_served_model(
           model=ollama_flux_model | default(none), cpu_limit=ollama_flux_cpu_limit | default(none),
           alignment=ollama_flux_thread_alignment | default(none)) }}
"""

RETURN = r"""
_value:
  description: The model name as Ollama lists it, or an empty string when no model is named.
  type: str
"""


def deployment_served_model(published, model=None, cpu_limit=None, alignment=None):
    if cpu_limit is None:
        cpu_limit = role_default("ollama_flux_cpu_limit")
    if alignment is None:
        alignment = role_default("ollama_flux_thread_alignment")
    try:
        return _deployment_served_model(published, model, cpu_limit, alignment)
    except ServedModelError as exc:
        raise AnsibleFilterError(f"deployment_served_model: {exc}") from exc


class FilterModule:
    """Deployment served model filter."""

    def filters(self):
        return {"deployment_served_model": deployment_served_model}
