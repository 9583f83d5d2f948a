"""The quantity filters, loaded from the work tree."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

FILTERS = Path(__file__).resolve().parents[3] / "plugins" / "filter"


def load(name):
    spec = importlib.util.spec_from_file_location(f"_ollama_flux_{name}", FILTERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()[name]


k8s_quantity_bytes = load("k8s_quantity_bytes")
k8s_cpu_millicores = load("k8s_cpu_millicores")


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


@pytest.mark.parametrize(
    "value,expected", [("500m", 500), ("1000m", 1000), ("2", 2000), ("1.5", 1500), (4, 4000), ("0.0001", 1)]
)
def test_cpu_millicores(value, expected):
    assert k8s_cpu_millicores(value) == expected


@pytest.mark.parametrize("value", ["2 cores", "2c", "1000mc", "", "m", "-1", False, "1Gi"])
def test_cpu_millicores_rejects(value):
    with pytest.raises(AnsibleFilterError, match="not a"):
        k8s_cpu_millicores(value)
