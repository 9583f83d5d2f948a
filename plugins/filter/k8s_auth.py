# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A role's kubeconfig and context as module_defaults for the kubernetes.core modules."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_auth import k8s_auth

DOCUMENTATION = r"""
name: k8s_auth
short_description: A kubeconfig and context as module_defaults for the kubernetes.core modules
version_added: 1.2.0
author: AI Platform team
description:
  - The mapping C(group/kubernetes.core.k8s) module_defaults take, with C(kubeconfig) and C(context) each
    only when set.
  - An empty one is left out rather than passed as an empty string, which the kubernetes.core modules would
    take instead of C(K8S_AUTH_KUBECONFIG) and C(K8S_AUTH_CONTEXT); unset, the client's own lookup applies
    (the environment, C(~/.kube/config)).
  - Each role that reads the cluster sets it once for its kubernetes.core tasks.
positional: _input
options:
  _input:
    description: The kubeconfig file (or its content as a mapping); empty for the client's own lookup.
    type: raw
    required: true
  context:
    description: The kubeconfig context; empty for the current one.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Read the cluster the inventory names
  module_defaults:
    group/kubernetes.core.k8s: >-
      {{ ollama_flux_kubeconfig | aiplatform.ollama.k8s_auth(context=ollama_flux_kube_context) }}
  block:
    - name: List the namespaces
      kubernetes.core.k8s_info:
        kind: Namespace
"""

RETURN = r"""
_value:
  description: C(kubeconfig) and C(context), each only when set.
  type: dict
"""


class FilterModule:
    """Kubernetes client settings filter."""

    def filters(self):
        return {"k8s_auth": k8s_auth}
