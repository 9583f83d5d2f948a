"""cluster-vars is the platform's ConfigMap: apply mode writes its OLLAMA_* keys there (the downstream
services substitute ${OLLAMA_HOST} and ${OLLAMA_SERVED_MODEL} from it) and owns nothing else. A key or a
label another manager set stays, and a key of ours another manager owns is not taken over.

Ownership is read from the API server's managedFields, where server-side apply records, per field
manager, every field it sent."""

from __future__ import annotations

from tests.integration.cluster.test_remediation import own_release

PLATFORM = "platform-team"
OURS = "aiplatform-ollama"  # ollama_flux_field_manager's default
# the platform's own labels, one of them a key the collection puts on its other objects
PLATFORM_LABELS = {"app.kubernetes.io/part-of": "platform", "platform.example.com/tier": "shared"}


def cluster_vars(namespace: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster-vars", "namespace": namespace, "labels": PLATFORM_LABELS},
            "data": data}


def owned_fields(config_map: dict, manager: str) -> dict:
    """The manager's fieldsV1 (all its entries merged, one level deep): {'f:data': {...}, 'f:metadata': {...}}."""
    fields: dict = {}
    for entry in config_map["metadata"].get("managedFields", []):
        if entry["manager"] == manager:
            for top, below in entry.get("fieldsV1", {}).items():
                fields.setdefault(top, {}).update(below)
    return fields


def owned_keys(config_map: dict, manager: str) -> set:
    return {k[2:] for k in owned_fields(config_map, manager).get("f:data", {})}


def test_apply_mode_owns_only_its_keys_of_cluster_vars(cluster, run_on_cluster):
    name = "ollama-vars"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    cluster.apply(cluster_vars(name, {"KAGENT_REPLICAS": "2"}), field_manager=PLATFORM)

    run = run_on_cluster("deploy.yml", own_release(name))
    assert run.returncode == 0, run.output[-6000:]
    config_map = cluster.get("v1", "ConfigMap", "cluster-vars", name)
    # what the platform put there survives the run, its labels included
    assert config_map["data"]["KAGENT_REPLICAS"] == "2"
    assert config_map["metadata"].get("labels") == PLATFORM_LABELS
    ours = owned_fields(config_map, OURS)
    assert set(ours) == {"f:data"}, f"{OURS} owns more than data keys: {ours}"
    keys = owned_keys(config_map, OURS)
    assert keys and all(key.startswith("OLLAMA_") for key in keys), keys
    assert owned_keys(config_map, PLATFORM) == {"KAGENT_REPLICAS"}
    assert set(owned_fields(config_map, PLATFORM)["f:metadata"]["f:labels"]) == {f"f:{k}" for k in PLATFORM_LABELS}

    # the platform team pins a key of ours to another value: the run stops instead of taking it over
    cluster.apply(cluster_vars(name, {"KAGENT_REPLICAS": "2", "OLLAMA_KEEP_ALIVE": "5m"}), field_manager=PLATFORM)
    conflict = run_on_cluster("deploy.yml", own_release(name))
    assert conflict.returncode != 0
    assert "conflict" in conflict.said.lower() and "OLLAMA_KEEP_ALIVE" in conflict.said, conflict.output[-6000:]
    assert cluster.get("v1", "ConfigMap", "cluster-vars", name)["data"]["OLLAMA_KEEP_ALIVE"] == "5m"
