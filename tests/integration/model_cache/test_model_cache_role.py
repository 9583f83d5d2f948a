"""The model_cache role: the directory target through ansible-playbook, the kubernetes target's
objects (apply mode, computed without a cluster) and its GitOps render, schema-checked strictly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.aiplatform.ollama.plugins.filter.num_thread import num_thread
from ansible_collections.aiplatform.ollama.plugins.filter.served_model import served_model
from tests.playbook import PROJECT_ROOT, role_objects, run_playbook
from tests.seed_table import inventory_table

ROLE = PROJECT_ROOT / "roles" / "model_cache"
PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")
# the seed's table as the inventories ship it, the keys the model cache uses, with the served model and
# its threads that ollama_flux publishes beside them
CLUSTER_VARS = {env: {"OLLAMA_MODEL": values["OLLAMA_MODEL"], "OLLAMA_STORAGE_SIZE": values["OLLAMA_STORAGE_SIZE"],
                      "OLLAMA_SERVED_MODEL": served_model(values["OLLAMA_MODEL"], values["OLLAMA_CPU_LIMIT"]),
                      "OLLAMA_NUM_THREAD": str(num_thread(values["OLLAMA_CPU_LIMIT"]))}
                for env, values in inventory_table().items()}

def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def task_output(output: str, name: str) -> str:
    """The lines ansible-playbook printed for the task whose name starts with `name`."""
    start = output.index(f"model_cache : {name}")
    end = output.find("TASK [", start)
    return output[start:] if end < 0 else output[start:end]


@pytest.fixture(scope="module")
def second_model(registry, model_factory):
    return registry.push_model(model_factory.tiny(seed=7), name="itest/cache-second", tag="v1")


def test_directory_target_check_seed_and_rerun(tmp_path, work_tree_collections, tiny_model, second_model):
    store = tmp_path / "store" / "models"
    extra = {"model_cache_path": str(store), "model_cache_models": [tiny_model.ref, second_model.ref],
             "model_cache_insecure": True, "model_cache_parts": 2, "model_cache_max_connections": 3,
             "model_cache_part_size": "1MiB", "model_cache_lock_timeout": 30}
    check = run_playbook(work_tree_collections, "seed_models.yml", "local", extra, "--check")
    assert check.returncode == 0 and check.recap["changed"] == 1, check.output[-3000:]
    assert "would download" in check.output and files_under(store) == []
    assert check.said.count("would be seeded; served as ") == 2 and "-t1, would be written" in check.said
    first = run_playbook(work_tree_collections, "seed_models.yml", "local", extra)
    assert first.returncode == 0 and first.recap["changed"] == 1, first.output[-3000:]
    # each model and its served model for the deployment's 1000m (the role's default): one thread
    host = tiny_model.ref.split("/", 1)[0]
    assert files_under(store / "manifests") == [f"{host}/itest/cache-second/v1", f"{host}/itest/cache-second/v1-t1",
                                                f"{host}/library/tiny/latest", f"{host}/library/tiny/latest-t1"]
    assert first.said.count("seeded; served as ") == 2 and f"{tiny_model.ref}-t1, written" in first.said
    # one task seeds both (their blobs download together under one store lock), not a loop of one per model
    seeding = task_output(first.output, "Seed the models")
    assert "(item=" not in seeding and seeding.count("changed: [") == 1, seeding
    again = run_playbook(work_tree_collections, "seed_models.yml", "local", extra)
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-3000:]
    assert again.output.count("already complete") == 2 and "nothing to download" in again.output
    assert again.said.count("-t1, in place") == 2


def test_directory_target_follows_the_deployment_threads(tmp_path, work_tree_collections, tiny_model):
    store = tmp_path / "models"
    extra = {"model_cache_path": str(store), "model_cache_models": [tiny_model.ref], "model_cache_insecure": True,
             "ollama_flux_cpu_limit": "3500m"}
    run = run_playbook(work_tree_collections, "seed_models.yml", "local", extra)
    assert run.returncode == 0, run.output[-3000:]
    host = tiny_model.ref.split("/", 1)[0]
    assert files_under(store / "manifests") == [f"{host}/library/tiny/latest", f"{host}/library/tiny/latest-t3"]
    # alignment off: the base model alone; the served model already there is left alone
    off = run_playbook(work_tree_collections, "seed_models.yml", "local",
                       dict(extra, model_cache_path=str(tmp_path / "off"), ollama_flux_thread_alignment="off"))
    assert off.returncode == 0 and "served as" not in off.output, off.output[-3000:]
    assert files_under(tmp_path / "off" / "manifests") == [f"{host}/library/tiny/latest"]


@pytest.mark.parametrize("value", [-1, "two", True])
def test_directory_target_refuses_bad_threads(tmp_path, work_tree_collections, tiny_model, value):
    store = tmp_path / "models"
    extra = {"model_cache_path": str(store), "model_cache_models": [tiny_model.ref], "model_cache_insecure": True,
             "preflight_mode": "off", "model_cache_num_thread": value}
    result = run_playbook(work_tree_collections, "seed_models.yml", "local", extra)
    assert result.returncode != 0 and "model_cache_num_thread" in result.output, result.output[-3000:]
    assert not store.exists()


@pytest.mark.parametrize("variable, value", [("model_cache_parts", 0), ("model_cache_max_connections", -1),
                                             ("model_cache_lock_timeout", "soon")])
def test_directory_target_refuses_bad_download_settings(tmp_path, work_tree_collections, tiny_model,
                                                        variable, value):
    store = tmp_path / "models"
    extra = {"model_cache_path": str(store), "model_cache_models": [tiny_model.ref], "model_cache_insecure": True,
             "preflight_mode": "off", variable: value}
    result = run_playbook(work_tree_collections, "seed_models.yml", "local", extra)
    assert result.returncode != 0 and f"{variable} " in result.output and "Check the download settings" in result.output
    assert not store.exists()


def test_directory_target_needs_a_path(work_tree_collections):
    # (the preflight would read the default model from registry.ollama.ai, out of reach here)
    result = run_playbook(work_tree_collections, "seed_models.yml", "local",
                          {"model_cache_path": "", "preflight_mode": "off"})
    assert result.returncode != 0 and "model_cache_path is ''" in result.output


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_apply_objects_validate(environment, tmp_path, work_tree_collections, validate_k8s):
    computed = role_objects(work_tree_collections, "model_cache", environment, "__model_cache_objects", tmp_path)
    objects = {item["object"]["kind"]: item["object"] for item in computed}
    assert list(objects) == ["Namespace", "PersistentVolumeClaim", "ConfigMap", "Job"]
    for obj in objects.values():
        validate_k8s(obj)
    pvc, job = objects["PersistentVolumeClaim"], objects["Job"]
    assert pvc["metadata"]["name"] == "ollama-models" and pvc["metadata"]["namespace"] == "ollama"
    assert pvc["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
    assert pvc["spec"]["resources"]["requests"]["storage"] == CLUSTER_VARS[environment]["OLLAMA_STORAGE_SIZE"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    spec = job["spec"]
    assert spec["backoffLimit"] == 2 and spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "aiplatform-ollama"
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == "ollama/ollama:0.18.3"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["OLLAMA_MODELS"] == "/root/.ollama/models" and env["MODEL_CACHE_MODELS"] == "qwen2.5:72b"
    assert env["MODEL_CACHE_INSECURE"] == "false"
    # the served model the deployment asks for, from the inventory's CPU limit
    values = CLUSTER_VARS[environment]
    assert env["MODEL_CACHE_SERVED_MODELS"] == \
        f"qwen2.5:72b {values['OLLAMA_SERVED_MODEL']} {values['OLLAMA_NUM_THREAD']}"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["models"] == "/root/.ollama"  # where the chart mounts the claim
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == "ollama-models"
    script = objects["ConfigMap"]["data"]["seed_models.sh"]
    assert script.strip() == (ROLE / "files" / "seed_models.sh").read_text().strip()
    assert volumes["script"]["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    assert re.fullmatch(r"ollama-model-cache-[0-9a-f]{10}", job["metadata"]["name"])


@pytest.mark.parametrize("extra, served", [
    ({"ollama_flux_thread_alignment": "off"}, None),
    ({"ollama_flux_models_preseeded": False}, None),
    ({"model_cache_num_thread": 0}, None),
    ({"ollama_flux_cpu_limit": "3"}, "qwen2.5:72b qwen2.5:72b-t3 3"),
    ({"model_cache_num_thread": 6, "model_cache_models": ["qwen2.5:7b", "team/m"]},
     "qwen2.5:7b qwen2.5:7b-t6 6\nteam/m team/m:latest-t6 6"),
])
def test_apply_job_creates_the_served_models_the_deployment_asks_for(tmp_path, work_tree_collections, extra, served):
    computed = role_objects(work_tree_collections, "model_cache", "dev", "__model_cache_job_obj", tmp_path, extra)
    env = {item["name"]: item["value"] for item in computed["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env.get("MODEL_CACHE_SERVED_MODELS") == served


@pytest.fixture(scope="module")
def gitops(tmp_path_factory, work_tree_collections):
    root = tmp_path_factory.mktemp("gitops")
    # the preflight reads qwen2.5:72b from registry.ollama.ai, out of reach here (tests/integration/preflight)
    extra = {"model_cache_mode": "gitops", "model_cache_gitops_dir": str(root), "preflight_mode": "off"}
    first = run_playbook(work_tree_collections, "seed_models.yml", "dev", extra)
    assert first.returncode == 0, first.output[-3000:]
    snapshot = {name: (root / name).read_bytes() for name in files_under(root)}
    again = run_playbook(work_tree_collections, "seed_models.yml", "dev", extra)
    return dict(root=root, first=first, again=again, snapshot=snapshot)


def test_gitops_render_is_idempotent(gitops):
    assert gitops["first"].recap["changed"] > 0
    assert gitops["again"].returncode == 0 and gitops["again"].recap["changed"] == 0, gitops["again"].output[-3000:]
    root = gitops["root"]
    assert {name: (root / name).read_bytes() for name in files_under(root)} == gitops["snapshot"]
    assert files_under(root) == [
        "apps/base/ollama/model-cache/configmap-seed-script.yaml",
        "apps/base/ollama/model-cache/job-seed-models.yaml",
        "apps/base/ollama/model-cache/kustomization.yaml",
        "apps/base/ollama/model-cache/namespace.yaml",
        "apps/base/ollama/model-cache/persistentvolumeclaim.yaml",
        "base/services/ollama-model-cache.yaml",
    ]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_gitops_objects_validate_after_substitution(gitops, environment, validate_k8s, validate_flux):
    app = gitops["root"] / "apps" / "base" / "ollama" / "model-cache"
    kustomization = yaml.safe_load((app / "kustomization.yaml").read_text())
    objects = {}
    for name in kustomization["resources"]:
        text = (app / name).read_text()
        (obj,) = [doc for doc in yaml.safe_load_all(text) if doc]
        annotations = obj["metadata"].get("annotations", {})
        if annotations.get("kustomize.toolkit.fluxcd.io/substitute") != "disabled":
            # Flux substitutes cluster-vars; an unknown variable would fail the reconcile
            assert set(PLACEHOLDER.findall(text)) <= set(CLUSTER_VARS[environment]), name
            obj = yaml.safe_load(PLACEHOLDER.sub(lambda m: CLUSTER_VARS[environment][m.group(1)], text))
        validate_k8s(obj)
        objects[obj["kind"]] = obj
    assert objects["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"] == \
        CLUSTER_VARS[environment]["OLLAMA_STORAGE_SIZE"]
    job = objects["Job"]
    assert "ttlSecondsAfterFinished" not in job["spec"]  # Flux would re-create a deleted Job
    env = {item["name"]: item["value"] for item in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_CACHE_MODELS"] == "qwen2.5:72b"
    values = CLUSTER_VARS[environment]
    assert env["MODEL_CACHE_SERVED_MODELS"] == \
        f"qwen2.5:72b {values['OLLAMA_SERVED_MODEL']} {values['OLLAMA_NUM_THREAD']}"
    flux_file = gitops["root"] / "base" / "services" / "ollama-model-cache.yaml"
    (flux,) = [d for d in yaml.safe_load_all(flux_file.read_text()) if d]
    validate_flux(flux)
    assert flux["spec"]["path"] == "./apps/base/ollama/model-cache" and flux["spec"]["wait"] is True
    assert flux["spec"]["postBuild"]["substituteFrom"] == [{"kind": "ConfigMap", "name": "cluster-vars"}]
