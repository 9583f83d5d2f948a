"""gitops mode: the tree the seed names, valid objects, idempotent, check mode writes nothing."""

from __future__ import annotations

import subprocess

import pytest
import yaml

APP_FILES = {
    "namespace.yaml",
    "persistentvolumeclaim.yaml",
    "networkpolicy.yaml",
    "poddisruptionbudget.yaml",
    "helmrepository.yaml",
    "helmrelease.yaml",
    "kustomization.yaml",
}


def tree_state(root):
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_check_mode_then_render_then_nothing_changes(tmp_path, run_deploy):
    target = tmp_path / "repo"
    extra = {"ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(target)}

    check = run_deploy("dev", extra, "--check", "--diff")
    assert check.returncode == 0, check.output[-4000:]
    assert check.recap["changed"] > 0
    assert not target.exists(), "--check wrote files"

    first = run_deploy("dev", extra)
    assert first.returncode == 0, first.output[-4000:]
    assert first.recap["changed"] > 0
    before = tree_state(target)

    second = run_deploy("dev", extra)
    assert second.returncode == 0, second.output[-4000:]
    assert second.recap["changed"] == 0, second.output[-4000:]
    assert tree_state(target) == before, "the second run rewrote files"


def test_tree_layout(rendered):
    for environment, tree in rendered.items():
        files = {str(p.relative_to(tree.root)) for p in tree.root.rglob("*") if p.is_file()}
        expected = {f"apps/base/ollama/{name}" for name in APP_FILES} | {
            "base/services/ollama.yaml",
            "base/services/environment.env",
            "base/services/kustomization.yaml",
            f"clusters/stages/{environment}/services/environment.env",
            f"clusters/stages/{environment}/services/kustomization.yaml",
        }
        assert files == expected


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_cluster_vars_reproduce_the_seed_table(rendered, seed_table, environment):
    variables = rendered[environment].cluster_vars()
    assert {key: variables[key] for key in seed_table[environment]} == seed_table[environment]
    assert variables["OLLAMA_NUM_THREAD"] == {"dev": "1", "prod": "2"}[environment]


def test_stage_lists_only_its_overrides(rendered):
    prod = (rendered["prod"].stage / "environment.env").read_text()
    assert "OLLAMA_CPU_LIMIT=2000m" in prod and "OLLAMA_MEMORY_LIMIT=52Gi" in prod
    assert "OLLAMA_STORAGE_SIZE=100Gi" in prod
    assert "OLLAMA_CPU_REQUEST" not in prod and "OLLAMA_MODEL=" not in prod
    # both stages render the very same base, so one repository holds both
    assert (rendered["dev"].root / "base" / "services" / "environment.env").read_bytes() == (
        rendered["prod"].root / "base" / "services" / "environment.env"
    ).read_bytes()
    for name in APP_FILES:
        assert (rendered["dev"].app / name).read_bytes() == (rendered["prod"].app / name).read_bytes(), name


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_objects_validate(rendered, environment, validate_k8s, validate_flux):
    tree = rendered[environment]
    objects = tree.app_objects()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["HelmRelease", "HelmRepository", "Namespace", "NetworkPolicy", "PersistentVolumeClaim",
                     "PodDisruptionBudget"]
    for obj in objects:
        if "fluxcd.io" in obj["apiVersion"]:
            validate_flux(obj)
        else:
            validate_k8s(obj)
    (flux_kustomization,) = tree.substituted("base/services/ollama.yaml")
    validate_flux(flux_kustomization)
    assert flux_kustomization["spec"]["postBuild"]["substituteFrom"] == [{"kind": "ConfigMap", "name": "cluster-vars"}]
    assert flux_kustomization["spec"]["path"] == "./apps/base/ollama"
    validate_k8s(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cluster-vars", "namespace": "flux-system"},
            "data": tree.cluster_vars(),
        }
    )


def test_flux_objects_validate_before_substitution(rendered, validate_flux):
    """The files as committed (with ${VARS}) are valid too: a Flux dry-run sees them like this."""
    tree = rendered["dev"]
    for name in ("helmrelease.yaml", "helmrepository.yaml"):
        (obj,) = yaml.safe_load_all((tree.app / name).read_text())
        validate_flux(obj)


def test_helmrelease_is_written_for_review(rendered):
    """A value that is only a placeholder stays double-quoted, so what Flux substitutes stays a string;
    keys come in the order a reviewer expects."""
    text = (rendered["prod"].app / "helmrelease.yaml").read_text()
    lines = text.splitlines()
    assert '      version: "${OLLAMA_CHART_VERSION}"' in lines
    assert '        cpu: "${OLLAMA_CPU_LIMIT}"' in lines
    assert '    replicaCount: "${OLLAMA_REPLICAS}"' in lines
    # keys in the order the role writes them: the object reads as apiVersion, kind, metadata, spec
    assert [line.split(":")[0] for line in lines if line and not line.startswith((" ", "#", "-"))] == [
        "apiVersion", "kind", "metadata", "spec"]


def test_helmrelease_remediation_and_timeouts(rendered):
    spec = rendered["prod"].helmrelease()["spec"]
    assert spec["chart"]["spec"]["version"] == "1.53.0"
    assert spec["chart"]["spec"]["sourceRef"] == {"kind": "HelmRepository", "name": "otwld", "namespace": "flux-system"}
    assert spec["install"]["remediation"]["retries"] == 3
    assert spec["upgrade"]["remediation"] == {"retries": 3, "remediateLastFailure": True}
    assert spec["timeout"] == "30m"
    assert spec["targetNamespace"] == "ollama" and spec["releaseName"] == "ollama"
    (repo,) = rendered["prod"].substituted("apps/base/ollama/helmrepository.yaml")
    assert repo["spec"]["url"] == "https://helm.otwld.com/"


def test_networkpolicy_admits_only_the_gateway_and_own_pods(rendered):
    (policy,) = rendered["dev"].substituted("apps/base/ollama/networkpolicy.yaml")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 11434, "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "agentgateway-system"}}},
        {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "aiplatform-ollama"}}},
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_kustomize_builds_the_stage(rendered, kubectl):
    tree = rendered["prod"]
    out = subprocess.run([kubectl, "kustomize", str(tree.stage)], capture_output=True, text=True, check=True).stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(out) if d}
    assert docs["ConfigMap"]["metadata"] == {"name": "cluster-vars", "namespace": "flux-system"}
    assert docs["ConfigMap"]["data"] == tree.cluster_vars()
    assert docs["Kustomization"]["metadata"]["name"] == "ollama"
    out = subprocess.run([kubectl, "kustomize", str(tree.app)], capture_output=True, text=True, check=True).stdout
    assert len([d for d in yaml.safe_load_all(out) if d]) == 6
