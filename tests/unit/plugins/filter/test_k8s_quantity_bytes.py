"""The k8s_quantity_bytes filter: a Kubernetes memory quantity as bytes, and what it refuses."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.k8s_quantity_bytes import k8s_quantity_bytes


@pytest.mark.parametrize(
    "value,expected",
    [
        ("3Gi", 3 * 2**30),
        ("512Mi", 512 * 2**20),
        ("5G", 5 * 10**9),
        ("1.5Gi", 3 * 2**29),
        ("100k", 100_000),
        ("1e9", 10**9),
        ("2E", 2 * 10**18),
        ("1024", 1024),
        (2048, 2048),
        ("0.5Ki", 512),
    ],
)
def test_quantity_bytes(value, expected):
    assert k8s_quantity_bytes(value) == expected


@pytest.mark.parametrize("value", ["4GB", "4 Gi", "2gi", "", "Gi", "-1Gi", "100m", "1.2.3Gi", True, "4ki"])
def test_quantity_bytes_rejects(value):
    with pytest.raises(AnsibleFilterError, match="not a"):
        k8s_quantity_bytes(value)
