"""The kubernetes.core module_defaults each role sets once: a kubeconfig or context only when set, so an
unset one leaves the client's own lookup (K8S_AUTH_KUBECONFIG, ~/.kube/config) in force."""

from __future__ import annotations

import pytest

from ansible_collections.aiplatform.ollama.plugins.filter.k8s_auth import FilterModule


@pytest.mark.parametrize(("kubeconfig", "context", "expected"), [
    ("", "", {}),
    ("/etc/k8s/admin.conf", "", {"kubeconfig": "/etc/k8s/admin.conf"}),
    ("", "prod", {"context": "prod"}),
    ("/etc/k8s/admin.conf", "prod", {"kubeconfig": "/etc/k8s/admin.conf", "context": "prod"}),
    ({"apiVersion": "v1", "clusters": []}, "", {"kubeconfig": {"apiVersion": "v1", "clusters": []}}),
    (None, None, {}),
])
def test_k8s_auth(kubeconfig, context, expected):
    assert FilterModule().filters()["k8s_auth"](kubeconfig, context=context) == expected
