"""Where the chart's pod finds its model store: each way chart_store gives, and each refusal."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.chart_store import FilterModule, chart_store

COMMON = {"pvc_name": "ollama-models", "mount_path": "/root/.ollama", "size": "20Gi",
          "access_modes": ["ReadWriteOnce"], "storage_class": "fast"}
MODELS_ENV = [{"name": "OLLAMA_MODELS", "value": "/root/.ollama/models"}]


@pytest.mark.parametrize("pvc_mode", ["role", "external"])
def test_a_seeded_store_is_mounted_read_only_through_a_volume_of_its_own(pvc_mode):
    # "yes": the role passes the variable as written, and Ansible's booleans are read as Ansible reads them
    store = chart_store("yes", pvc_mode=pvc_mode, **COMMON)
    assert store["persistent_volume"] == {"enabled": False}
    assert store["volumes"] == [{"name": "ollama-store",
                                 "persistentVolumeClaim": {"claimName": "ollama-models", "readOnly": True}}]
    assert store["volume_mounts"] == [{"name": "ollama-store", "mountPath": "/root/.ollama/models",
                                       "subPath": "models", "readOnly": True}]
    assert store["models_env"] == MODELS_ENV
    assert store["store_env"] == [{"name": "OLLAMA_NOPRUNE", "value": "1"}]


@pytest.mark.parametrize("pvc_mode", ["role", "external"])
def test_a_store_the_pod_pulls_into_is_the_claim_it_is_given(pvc_mode):
    store = chart_store(False, pvc_mode=pvc_mode, **COMMON)
    assert store == {"persistent_volume": {"enabled": True, "existingClaim": "ollama-models"}, "volumes": [],
                     "volume_mounts": [], "models_env": MODELS_ENV, "store_env": []}


def test_the_chart_s_own_claim_has_the_size_modes_and_class_and_outlives_the_release():
    store = chart_store(False, pvc_mode="chart", **dict(COMMON, size="${OLLAMA_STORAGE_SIZE}"))
    # a Flux placeholder passes through as it is: cluster-vars fills it in
    assert store["persistent_volume"] == {
        "enabled": True, "size": "${OLLAMA_STORAGE_SIZE}", "accessModes": ["ReadWriteOnce"], "storageClass": "fast",
        "annotations": {"helm.sh/resource-policy": "keep"}}
    assert store["volumes"] == store["volume_mounts"] == store["store_env"] == []
    assert store["models_env"] == MODELS_ENV


def test_a_claim_the_chart_creates_cannot_be_seeded():
    with pytest.raises(AnsibleFilterError, match="chart_store: a claim the chart creates cannot be seeded.*role or "
                                                 "external"):
        chart_store(True, pvc_mode="chart", **COMMON)


def test_an_unknown_pvc_mode_is_named_with_the_choices():
    with pytest.raises(AnsibleFilterError, match="pvc_mode is 'mine'; give one of chart, role, external"):
        chart_store(False, pvc_mode="mine", **COMMON)


def test_the_filter_is_registered():
    assert FilterModule().filters()["chart_store"] is chart_store
