"""Run the ollama_flux role from the work tree (tests/playbook.py) and read back what it rendered."""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.playbook import PlaybookRun, run_playbook

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")

# The seed's configuration table (ollama-service-catalog.md), verbatim.
SEED_TABLE = {
    "dev": {
        "OLLAMA_CHART_VERSION": "1.53.0",
        "OLLAMA_CPU_LIMIT": "1000m",
        "OLLAMA_CPU_REQUEST": "500m",
        "OLLAMA_HOST": "http://agentgateway-proxy.agentgateway-system.svc.cluster.local:9080",
        "OLLAMA_MEMORY_LIMIT": "3Gi",
        "OLLAMA_MEMORY_REQUEST": "2Gi",
        "OLLAMA_MODEL": "qwen2.5:72b",
        "OLLAMA_STORAGE_SIZE": "5Gi",
    },
    "prod": {
        "OLLAMA_CHART_VERSION": "1.53.0",
        "OLLAMA_CPU_LIMIT": "2000m",
        "OLLAMA_CPU_REQUEST": "500m",
        "OLLAMA_HOST": "http://agentgateway-proxy.agentgateway-system.svc.cluster.local:9080",
        "OLLAMA_MEMORY_LIMIT": "4Gi",
        "OLLAMA_MEMORY_REQUEST": "2Gi",
        "OLLAMA_MODEL": "qwen2.5:72b",
        "OLLAMA_STORAGE_SIZE": "10Gi",
    },
}


@pytest.fixture(scope="session")
def collections_path(work_tree_collections) -> Path:
    return work_tree_collections


@pytest.fixture(scope="session")
def run_deploy(work_tree_collections):
    """ansible-playbook playbooks/deploy.yml -i inventories/<inventory> with extra vars (JSON)."""

    def run(inventory: str, extra_vars: dict, *args: str) -> PlaybookRun:
        return run_playbook(work_tree_collections, "deploy.yml", inventory, extra_vars, *args, timeout=300)

    return run


def read_env(path: Path) -> dict:
    data = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            data[key] = value
    return data


class GitopsTree:
    """One rendered tree: the files, the merged cluster-vars of a stage, Flux's substitution."""

    def __init__(self, root: Path, environment: str):
        self.root = root
        self.environment = environment
        self.app = root / "apps" / "base" / "ollama"
        self.stage = root / "clusters" / "stages" / environment / "services"

    def cluster_vars(self) -> dict:
        """base/services/environment.env merged with the stage's, as kustomize behavior: merge does."""
        base = read_env(self.root / "base" / "services" / "environment.env")
        return {**base, **read_env(self.stage / "environment.env")}

    def substituted(self, relpath: str) -> list[dict]:
        """The file's objects after Flux postBuild substitution with this stage's cluster-vars."""
        variables = self.cluster_vars()
        text = (self.root / relpath).read_text()
        missing = sorted(set(PLACEHOLDER.findall(text)) - set(variables))
        assert not missing, f"{relpath}: {missing} not in cluster-vars; Flux would fail the reconcile"
        text = PLACEHOLDER.sub(lambda m: variables[m.group(1)], text)
        return [doc for doc in yaml.safe_load_all(text) if doc]

    def app_objects(self) -> list[dict]:
        kustomization = yaml.safe_load((self.app / "kustomization.yaml").read_text())
        objects = []
        for name in kustomization["resources"]:
            objects += self.substituted(str((self.app / name).relative_to(self.root)))
        return objects

    def helmrelease(self) -> dict:
        (release,) = self.substituted("apps/base/ollama/helmrelease.yaml")
        return release


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, run_deploy):
    """dev and prod rendered once per session, each into its own tree."""
    trees = {}
    for environment in ("dev", "prod"):
        root = tmp_path_factory.mktemp(f"gitops-{environment}")
        result = run_deploy(environment, {"ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(root)})
        assert result.returncode == 0, result.output[-4000:]
        trees[environment] = GitopsTree(root, environment)
    return trees


@pytest.fixture(scope="session")
def helm_bin() -> str:
    helm = os.environ.get("HELM_BIN") or shutil.which("helm")
    if not helm or not Path(helm).is_file():
        pytest.skip(f"helm not found (HELM_BIN={os.environ.get('HELM_BIN')!r}): run `make setup` or set HELM_BIN")
    return helm


@pytest.fixture(scope="session")
def ollama_chart(shared_fixtures) -> Path:
    chart = shared_fixtures / "charts" / "ollama-1.53.0"
    if not (chart / "Chart.yaml").is_file():
        pytest.skip(
            f"chart fixture not found at {chart}: point AIPLATFORM_FIXTURES_DIR at a copy holding "
            "charts/ollama-1.53.0 (helm pull ollama --repo https://helm.otwld.com --version 1.53.0 --untar)"
        )
    return chart


@pytest.fixture(scope="session")
def flux_schemas(shared_fixtures):
    """(apiVersion, kind) -> a strict JSON schema from the Flux CRDs' openAPIV3Schema."""
    crd_dir = shared_fixtures / "flux-crds"
    if not crd_dir.is_dir():
        pytest.skip(f"Flux CRDs not found at {crd_dir}")
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


@pytest.fixture(scope="session")
def validate_flux(flux_schemas):
    """Check one Flux object against its CRD's schema, unknown fields included."""
    return lambda obj: _validate_flux(obj, flux_schemas)


@pytest.fixture(scope="session")
def validate_k8s():
    """Check one built-in Kubernetes object against the 1.37 schemas, strictly."""
    return _validate_k8s


def _validate_flux(obj: dict, schemas: dict) -> None:
    import jsonschema

    key = (obj["apiVersion"], obj["kind"])
    assert key in schemas, f"no CRD schema for {key}"
    errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{key} {obj['metadata']['name']}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors
    )


def _validate_k8s(obj: dict, version: str = "1.37.0") -> None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{obj['kind']}/{obj['metadata'].get('name')}: {exc.message} at {'/'.join(map(str, exc.path))}")


@pytest.fixture(scope="session")
def seed_table() -> dict:
    return SEED_TABLE


@pytest.fixture(scope="session")
def gitops_tree():
    """GitopsTree(root, environment) for a tree a test rendered itself."""
    return GitopsTree
