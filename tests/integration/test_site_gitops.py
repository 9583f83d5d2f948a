"""dev and prod rendered the way the inventories ship: model_cache and ollama_flux into one Flux tree.

The two stages must fit together: one owner per object, Ollama's Kustomization waiting for the seed
Job's, the release mounting the claim the seed Job fills, everything valid against the schemas.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter

import pytest
import yaml

from tests.playbook import run_playbook
from tests.seed_table import inventory_table

# What the object templates of both roles wrote before aiplatform.ollama.to_review_yaml.


def _render(collections, environment: str, root) -> None:
    # the preflight reads qwen2.5:72b from registry.ollama.ai, out of reach here (tests/integration/preflight)
    extra = {"ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(root), "preflight_mode": "off"}
    for playbook in ("seed_models.yml", "deploy.yml"):
        run = run_playbook(collections, playbook, environment, extra)
        assert run.returncode == 0, run.output[-4000:]


def _tree(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def site_trees(work_tree_collections, tmp_path_factory) -> dict:
    """dev and prod rendered once, each into its own tree, as the inventories ship."""
    trees = {}
    for environment in ("dev", "prod"):
        trees[environment] = tmp_path_factory.mktemp(f"site-{environment}")
        _render(work_tree_collections, environment, trees[environment])
    return trees


def _literal_block(text: str, value: str) -> str:
    """The line that opens the block holding value, one line of value per line of text after it
    (e.g. 'seed_models.sh: |-'); empty when value is not written that way."""
    lines, wanted = text.splitlines(), [line.strip() for line in value.splitlines()]
    for i in range(1, len(lines)):
        if [line.strip() for line in lines[i:i + len(wanted)]] == wanted:
            return lines[i - 1].strip()
    return ""


def _cluster_vars(root, environment: str) -> dict:
    """base/services/environment.env merged with the stage's, as the cluster-vars ConfigMap holds them."""
    variables = {}
    for path in (root / "base" / "services" / "environment.env",
                 root / "clusters" / "stages" / environment / "services" / "environment.env"):
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition("=")
                variables[key] = value
    return variables


def _objects(root, environment: str) -> list[tuple[str, dict]]:
    """Every object of the tree as Flux applies it: ${VAR} filled from cluster-vars, except where
    an object opts out of substitution (the seed script's own shell variables)."""
    variables = _cluster_vars(root, environment)
    found = []
    for path in sorted(root.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("apiVersion") == "kustomize.config.k8s.io/v1beta1":
                continue
            annotations = doc.get("metadata", {}).get("annotations") or {}
            if annotations.get("kustomize.toolkit.fluxcd.io/substitute") != "disabled":
                text = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: variables.get(m.group(1), m.group(0)),
                              yaml.safe_dump(doc))
                assert "${OLLAMA_" not in text, f"{path}: a variable cluster-vars does not define"
                doc = yaml.safe_load(text)
            found.append((str(path.relative_to(root)), doc))
    return found


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_stages_render_into_one_consistent_tree(site_trees, environment, validate_k8s, validate_flux):
    root = site_trees[environment]
    objects = _objects(root, environment)
    owners = Counter((doc["kind"], doc["metadata"]["name"]) for _, doc in objects)
    assert owners[("Namespace", "ollama")] == 1
    assert owners[("PersistentVolumeClaim", "ollama-models")] == 1
    duplicated = [key for key, count in owners.items() if count > 1]
    assert not duplicated, f"objects owned twice: {duplicated}"

    by_name = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in objects}
    ollama = by_name[("Kustomization", "ollama")]
    assert ollama["spec"]["dependsOn"] == [{"name": "ollama-model-cache"}]
    assert by_name[("Kustomization", "ollama-model-cache")]["spec"]["wait"] is True
    services = yaml.safe_load((root / "base" / "services" / "kustomization.yaml").read_text())
    assert set(services["resources"]) == {"ollama.yaml", "ollama-model-cache.yaml"}

    release = by_name[("HelmRelease", "ollama")]
    values = release["spec"]["values"]
    # the pods read the seeded claim read-only; the chart's own data volume is off
    assert values["persistentVolume"]["enabled"] is False
    assert {"name": "ollama-store", "persistentVolumeClaim": {"claimName": "ollama-models", "readOnly": True}} \
        in values["volumes"]
    (mount,) = [m for m in values["volumeMounts"] if m["name"] == "ollama-store"]
    assert mount["readOnly"] is True and mount["subPath"] == "models"
    assert {"name": "OLLAMA_NOPRUNE", "value": "1"} in values["extraEnv"]
    assert "initContainers" not in values, "nothing but the seed writes the store"
    assert values["ollama"]["models"].get("pull", []) == []
    variables = _cluster_vars(root, environment)
    assert str(values["replicaCount"]) == variables["OLLAMA_REPLICAS"] and int(variables["OLLAMA_REPLICAS"]) >= 1
    # the seed Job writes the served model the pods are asked for, with the stage's thread count
    (job,) = [doc for _, doc in objects if doc["kind"] == "Job"]
    (seeder,) = job["spec"]["template"]["spec"]["containers"]
    served = {e["name"]: e.get("value") for e in seeder["env"]}["MODEL_CACHE_SERVED_MODELS"]
    assert served.split() == [variables["OLLAMA_MODEL"], variables["OLLAMA_SERVED_MODEL"],
                              variables["OLLAMA_NUM_THREAD"]]

    size = inventory_table()[environment]["OLLAMA_STORAGE_SIZE"]
    assert by_name[("PersistentVolumeClaim", "ollama-models")]["spec"]["resources"]["requests"]["storage"] == size

    for _, doc in objects:
        if doc["apiVersion"].split("/")[0].endswith("fluxcd.io"):
            validate_flux(doc)
        else:
            validate_k8s(doc)


def test_rendering_again_changes_nothing(work_tree_collections, tmp_path, site_trees):
    _render(work_tree_collections, "prod", tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    # a render into a fresh tree writes the very same bytes as the one before it
    assert _tree(tmp_path) == _tree(site_trees["prod"])
    extra = {"ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(tmp_path), "preflight_mode": "off"}
    for playbook in ("seed_models.yml", "deploy.yml"):
        run = run_playbook(work_tree_collections, playbook, "prod", extra)
        assert run.returncode == 0, run.output[-4000:]
        assert run.recap["changed"] == 0
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_stage_builds_with_kustomize(work_tree_collections, tmp_path, kubectl):
    _render(work_tree_collections, "dev", tmp_path)
    stage = tmp_path / "clusters" / "stages" / "dev" / "services"
    out = subprocess.run([kubectl, "kustomize", str(stage)], capture_output=True, text=True, check=True).stdout
    built = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d}
    wanted = {("Kustomization", "ollama"), ("Kustomization", "ollama-model-cache"), ("ConfigMap", "cluster-vars")}
    assert wanted <= built


def test_scripts_are_literal_blocks(site_trees):
    """The seed script reads line by line in a pull request."""
    root = site_trees["prod"]
    configmap_text = (root / "apps/base/ollama/model-cache/configmap-seed-script.yaml").read_text()
    (configmap,) = [d for d in yaml.safe_load_all(configmap_text) if d]
    script = configmap["data"]["seed_models.sh"]
    assert script.count("\n") > 20
    assert _literal_block(configmap_text, script) in ("seed_models.sh: |", "seed_models.sh: |-")
    assert len(configmap_text.splitlines()) > script.count("\n") and "\n    set -u\n" in configmap_text

    release_text = (root / "apps/base/ollama/helmrelease.yaml").read_text()
    # Flux placeholders that are a whole value stay double-quoted, as the regex_replace made them
    assert 'version: "${OLLAMA_CHART_VERSION}"' in release_text
