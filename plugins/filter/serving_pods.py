# Copyright: (c) 2026, AI Platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ollama pods that serve one of the given models: a prune must not remove what they hold."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.rollout_plan import serving_pods as _serving_pods

DOCUMENTATION = r"""
name: serving_pods
short_description: The Ollama pods that serve one of the given models
version_added: 1.2.0
author: AI Platform team
description:
  - Reads the C(aiplatform.ollama/model) and C(aiplatform.ollama/served-model) annotations the C(ollama_flux)
    role puts on its pods, and names each pod, stopping ones included, that serves one of O(models).
  - The prune of a model rollout waits until this is empty, and refuses to remove a model while it is not.
positional: _input
options:
  _input:
    description: The pods (C(kubernetes.core.k8s_info) resources).
    type: list
    elements: dict
    required: true
  models:
    description: The model names to look for.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Name the pods that still serve the previous model
  ansible.builtin.debug:
    msg: "{{ pods.resources | aiplatform.ollama.serving_pods(['qwen2.5:32b', 'qwen2.5:32b-t2']) }}"
"""

RETURN = r"""
_value:
  description: C(<pod> (<model>)) for each pod, with C(, stopping) for a pod being deleted.
  type: list
  elements: str
"""


def serving_pods(pods, models):
    return _serving_pods(pods, models)


class FilterModule:
    """Serving pods filter."""

    def filters(self):
        return {"serving_pods": serving_pods}
