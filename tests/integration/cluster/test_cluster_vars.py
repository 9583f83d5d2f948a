"""cluster-vars is the platform's ConfigMap: apply mode writes its OLLAMA_* keys there (the downstream
services substitute ${OLLAMA_HOST} and ${OLLAMA_SERVED_MODEL} from it) and owns nothing else. A key
another manager set stays, and a key of ours another manager owns is not taken over."""

from __future__ import annotations

from tests.integration.cluster.test_remediation import own_release

PLATFORM = "platform-team"


def cluster_vars(namespace: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-vars", "namespace": namespace},
            "data": data}


def owned_keys(config_map: dict, manager: str) -> set:
    keys = set()
    for entry in config_map["metadata"].get("managedFields", []):
        if entry["manager"] == manager:
            keys |= {k[2:] for k in entry.get("fieldsV1", {}).get("f:data", {})}
    return keys


def test_apply_mode_owns_only_its_keys_of_cluster_vars(cluster, run_on_cluster):
    name = "ollama-vars"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    cluster.apply(cluster_vars(name, {"KAGENT_REPLICAS": "2"}), field_manager=PLATFORM)

    run = run_on_cluster("deploy.yml", own_release(name))
    assert run.returncode == 0, run.output[-6000:]
    config_map = cluster.get("v1", "ConfigMap", "cluster-vars", name)
    assert config_map["data"]["KAGENT_REPLICAS"] == "2"
    ours = owned_keys(config_map, "aiplatform-ollama")
    assert ours and all(key.startswith("OLLAMA_") for key in ours), ours
    assert owned_keys(config_map, PLATFORM) == {"KAGENT_REPLICAS"}

    # the platform team pins a key of ours to another value: the run stops instead of taking it over
    cluster.apply(cluster_vars(name, {"KAGENT_REPLICAS": "2", "OLLAMA_KEEP_ALIVE": "5m"}), field_manager=PLATFORM)
    conflict = run_on_cluster("deploy.yml", own_release(name))
    assert conflict.returncode != 0
    assert "conflict" in conflict.said.lower() and "OLLAMA_KEEP_ALIVE" in conflict.said, conflict.output[-6000:]
    assert cluster.get("v1", "ConfigMap", "cluster-vars", name)["data"]["OLLAMA_KEEP_ALIVE"] == "5m"
