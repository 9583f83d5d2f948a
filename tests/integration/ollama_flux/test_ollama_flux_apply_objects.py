"""apply mode sends the same objects with the values filled in: check them without a cluster."""

from __future__ import annotations

import json

import pytest

from tests.playbook import role_objects


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_apply_objects_validate(environment, tmp_path, collections_path, seed_table, validate_k8s, validate_flux):
    data = role_objects(collections_path, "ollama_flux", environment,
                        "{'cluster_vars': __ollama_flux_cluster_vars_obj, 'app': __ollama_flux_app_objects}", tmp_path)

    cluster_vars = data["cluster_vars"]
    validate_k8s(cluster_vars)
    # the platform's ConfigMap: the collection sends its OLLAMA_* keys and nothing of the metadata
    assert cluster_vars["metadata"] == {"name": "cluster-vars", "namespace": "flux-system"}
    table = seed_table[environment]
    assert {k: cluster_vars["data"][k] for k in table} == table

    for item in data["app"]:
        obj = item["object"]
        # no Flux placeholder; the align-threads script's own ${ALIGN_*} shell variables are not Flux's
        assert "${OLLAMA_" not in json.dumps(obj), f"{item['file']} still has a placeholder in apply mode"
        (validate_flux if "fluxcd.io" in obj["apiVersion"] else validate_k8s)(obj)
    release = next(i["object"] for i in data["app"] if i["object"]["kind"] == "HelmRelease")
    assert release["spec"]["values"]["resources"]["limits"] == {
        "cpu": table["OLLAMA_CPU_LIMIT"],
        "memory": table["OLLAMA_MEMORY_LIMIT"],
    }
    assert release["spec"]["install"]["remediation"]["retries"] == 3
