# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The cluster a role's kubernetes.core tasks talk to, as module_defaults for their action group."""

from __future__ import annotations


def k8s_auth(kubeconfig, context=""):
    """`kubeconfig` and `context` for group/kubernetes.core.k8s, each only when set: an empty one is left
    out rather than passed as "", which kubernetes.core would take over K8S_AUTH_KUBECONFIG and
    K8S_AUTH_CONTEXT, so an unset one keeps the client's own lookup (environment, ~/.kube/config)."""
    return {name: value for name, value in (("kubeconfig", kubeconfig), ("context", context)) if value}
