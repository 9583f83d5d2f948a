"""The k8s_cpu_millicores filter: a Kubernetes CPU quantity as millicores, and what it refuses."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.k8s_cpu_millicores import k8s_cpu_millicores


@pytest.mark.parametrize(
    "value,expected", [("500m", 500), ("1000m", 1000), ("2", 2000), ("1.5", 1500), (4, 4000), ("0.0001", 1)]
)
def test_cpu_millicores(value, expected):
    assert k8s_cpu_millicores(value) == expected


@pytest.mark.parametrize("value", ["2 cores", "2c", "1000mc", "", "m", "-1", False, "1Gi"])
def test_cpu_millicores_rejects(value):
    with pytest.raises(AnsibleFilterError, match="not a"):
        k8s_cpu_millicores(value)
