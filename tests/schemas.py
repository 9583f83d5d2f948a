"""Schema checks for rendered objects: Kubernetes 1.37 (kubernetes-validate) and the Flux CRDs, strictly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml


def load_flux_schemas(crd_dir: Path) -> dict:
    """(apiVersion, kind) -> a strict JSON schema from each Flux CRD's openAPIV3Schema."""
    schemas = {}
    for path in crd_dir.glob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = strict_schema(version["schema"]["openAPIV3Schema"])
    return schemas


def strict_schema(schema: dict) -> dict:
    """The API server prunes unknown fields silently: make them an error, as kubectl --validate=strict does."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # metadata is described as a bare object in CRDs; the API server checks it itself
    schema.setdefault("properties", {}).setdefault("metadata", {"type": "object"})
    return schema


def validate_flux(obj: dict, schemas: dict) -> None:
    import jsonschema

    key = (obj["apiVersion"], obj["kind"])
    assert key in schemas, f"no CRD schema for {key}"
    errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{key} {obj['metadata']['name']}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors
    )


def validate_k8s(obj: dict, version: str = "1.37.0") -> None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{obj['kind']}/{obj['metadata'].get('name')}: {exc.message} at {'/'.join(map(str, exc.path))}")
