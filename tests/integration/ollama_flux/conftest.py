"""Run the ollama_flux role from the work tree (tests/playbook.py) and read back what it rendered."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.playbook import PlaybookRun, run_playbook
from tests.seed_table import inventory_table

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# Flux's substitution: ${VAR} is replaced, $${VAR} is the escape that leaves a literal ${VAR}
PLACEHOLDER = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)\}")
ESCAPED = re.compile(r"\$\$(?=\{)")



@pytest.fixture(scope="session")
def collections_path(work_tree_collections) -> Path:
    return work_tree_collections


@pytest.fixture(scope="session")
def run_deploy(work_tree_collections):
    """ansible-playbook playbooks/deploy.yml -i inventories/<inventory> with extra vars (JSON)."""

    def run(inventory: str, extra_vars: dict, *args: str) -> PlaybookRun:
        # the preflight reads qwen2.5:72b from registry.ollama.ai, which these machines cannot reach;
        # it has its own tests (tests/integration/preflight)
        extra_vars = {"preflight_mode": "off", **extra_vars}
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
        """The file's objects after Flux postBuild substitution with this stage's cluster-vars. As
        kustomize-controller does, each object is serialised again before the substitution, so the
        file's own quoting around a placeholder is gone."""
        variables = self.cluster_vars()
        text = (self.root / relpath).read_text()
        missing = sorted(set(PLACEHOLDER.findall(text)) - set(variables))
        assert not missing, f"{relpath}: {missing} not in cluster-vars; Flux would fail the reconcile"
        objects = []
        for doc in yaml.safe_load_all(text):
            if doc:
                again = yaml.safe_dump(doc, width=float("inf"), sort_keys=False)
                substituted = ESCAPED.sub("$", PLACEHOLDER.sub(lambda m: variables[m.group(1)], again))
                objects.append(yaml.safe_load(substituted))
        return objects

    def app_objects(self) -> list[dict]:
        kustomization = yaml.safe_load((self.app / "kustomization.yaml").read_text())
        objects = []
        for name in kustomization["resources"]:
            objects += self.substituted(str((self.app / name).relative_to(self.root)))
        return objects

    def helmrelease(self) -> dict:
        (release,) = self.substituted("apps/base/ollama/helmrelease.yaml")
        return release


# The inventories hand the namespace and the claim to model_cache (tests/integration/test_site_gitops.py
# renders both stages together); these tests look at ollama_flux owning everything itself.
STANDALONE = {"ollama_flux_pvc_mode": "role", "ollama_flux_namespace_create": True, "ollama_flux_gitops_depends_on": []}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, run_deploy):
    """dev and prod rendered once per session, each into its own tree."""
    trees = {}
    for environment in ("dev", "prod"):
        root = tmp_path_factory.mktemp(f"gitops-{environment}")
        result = run_deploy(environment, {"ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(root),
                                          **STANDALONE})
        assert result.returncode == 0, result.output[-4000:]
        trees[environment] = GitopsTree(root, environment)
    return trees


@pytest.fixture(scope="session")
def helm_bin() -> str:
    helm = os.environ.get("HELM_BIN") or shutil.which("helm")
    if not helm or not Path(helm).is_file():
        pytest.fail(f"helm not found (HELM_BIN={os.environ.get('HELM_BIN')!r}): run `make setup` or set HELM_BIN")
    return helm


@pytest.fixture(scope="session")
def ollama_chart(shared_fixtures) -> Path:
    chart = shared_fixtures / "charts" / "ollama-1.53.0"
    if not (chart / "Chart.yaml").is_file():
        pytest.fail(
            f"chart fixture not found at {chart}: run `make setup` (fetches it when online) or point "
            "AIPLATFORM_FIXTURES_DIR at a copy holding charts/ollama-1.53.0"
        )
    return chart


@pytest.fixture(scope="session")
def seed_table() -> dict:
    """The seed's table as the inventories ship it (tests/seed_table.py)."""
    return inventory_table()


@pytest.fixture(scope="session")
def gitops_tree():
    """GitopsTree(root, environment) for a tree a test rendered itself."""
    return GitopsTree
