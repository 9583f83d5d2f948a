# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An Ollama model reference, parsed and validated by the one parser the modules use."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, ModelRefError

DOCUMENTATION = r"""
name: model_ref
short_description: Parse and validate an Ollama model reference
version_added: 1.2.0
author: AI Platform team
description:
  - Splits a model reference into registry host, namespace, model and tag, with Ollama's defaults
    (C(qwen2.5) is C(registry.ollama.ai/library/qwen2.5:latest)), and refuses what the Ollama server
    would refuse - and so anything that could change a script or a path it reaches (C($(...)), quotes,
    spaces, C(..)) - with an error naming the variable, the value and the accepted forms.
  - The modules parse names with the same code, so a name this filter accepts is one they accept.
positional: _input
options:
  _input:
    description: The model reference.
    type: str
    required: true
  variable:
    description: The variable the reference came from, named in the error.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Refuse a bad model name before anything is seeded
  ansible.builtin.set_fact:
    refs: "{{ model_cache_models | map('aiplatform.ollama.model_ref', variable='model_cache_models') | list }}"

- name: The name as Ollama lists it
  ansible.builtin.debug:
    msg: "{{ ('qwen2.5' | aiplatform.ollama.model_ref).short }}"   # qwen2.5:latest
"""

RETURN = r"""
_value:
  description: The parts and the two normalised forms.
  type: dict
  contains:
    host: {description: Registry host (and port)., type: str}
    namespace: {description: Namespace in the registry., type: str}
    model: {description: Model name., type: str}
    tag: {description: Tag., type: str}
    full: {description: C(host/namespace/model:tag)., type: str}
    short: {description: The name as Ollama lists it (default registry and namespace left out)., type: str}
"""


def model_ref(name, variable=""):
    try:
        ref = ModelRef.parse(name)
    except ModelRefError as exc:
        raise AnsibleFilterError(f"{variable}: {exc}" if variable else f"model_ref: {exc}") from exc
    return {"host": ref.host, "namespace": ref.namespace, "model": ref.model, "tag": ref.tag, "full": ref.full,
            "short": ref.short}


class FilterModule:
    """Model reference filter."""

    def filters(self):
        return {"model_ref": model_ref}
