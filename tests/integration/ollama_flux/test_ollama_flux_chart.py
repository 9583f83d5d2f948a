"""helm template of the real chart with exactly the values the HelmRelease carries."""

from __future__ import annotations

import subprocess

import pytest
import yaml

THREADS = {"dev": 1, "prod": 2}


def helm_template(helm_bin, chart, release: dict, tmp_path) -> list[dict]:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(release["spec"]["values"]))
    proc = subprocess.run(
        [
            helm_bin,
            "template",
            release["spec"]["releaseName"],
            str(chart),
            "--namespace",
            release["spec"]["targetNamespace"],
            "--values",
            str(values),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_chart_renders_the_release(rendered, seed_table, environment, helm_bin, ollama_chart, tmp_path, validate_k8s):
    table = seed_table[environment]
    objects = helm_template(helm_bin, ollama_chart, rendered[environment].helmrelease(), tmp_path)
    for obj in objects:
        validate_k8s(obj)

    assert not by_kind(objects, "Ingress")
    (service,) = by_kind(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert [(p["port"], p.get("nodePort")) for p in service["spec"]["ports"]] == [(11434, None)]

    (deployment,) = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"] == {
        "requests": {"cpu": table["OLLAMA_CPU_REQUEST"], "memory": table["OLLAMA_MEMORY_REQUEST"]},
        "limits": {"cpu": table["OLLAMA_CPU_LIMIT"], "memory": table["OLLAMA_MEMORY_LIMIT"]},
    }
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        # the chart's own bind address; the seed's OLLAMA_HOST is the clients' gateway URL, not this
        "OLLAMA_HOST": "0.0.0.0:11434",
        # the store on the claim, whatever HOME the image gives its user
        "OLLAMA_MODELS": "/root/.ollama/models",
        "OLLAMA_KEEP_ALIVE": "24h",
        "OLLAMA_NUM_PARALLEL": "1",
        "OLLAMA_CONTEXT_LENGTH": "4096",
        "OLLAMA_LOAD_TIMEOUT": "15m",
        "OLLAMA_MAX_LOADED_MODELS": "1",
    }
    assert all(isinstance(v, str) for v in env.values())
    assert {"name": "ollama-data", "mountPath": "/root/.ollama"} in container["volumeMounts"]
    # Ready as soon as Ollama answers, not after the chart's 30 s delay
    assert container["readinessProbe"]["initialDelaySeconds"] == 1
    assert container["readinessProbe"]["periodSeconds"] == 2

    # pre-seeded store: the cache is an existing claim and nothing runs in a postStart hook
    assert "lifecycle" not in container
    assert not by_kind(objects, "PersistentVolumeClaim")
    volume = next(v for v in pod["volumes"] if v["name"] == "ollama-data")
    assert volume == {"name": "ollama-data", "persistentVolumeClaim": {"claimName": "ollama-models"}}

    # num_thread = whole CPUs of the limit, baked into the served model before the server starts
    (init,) = pod["initContainers"]
    script = init["args"][0]
    # the names come from the init container's environment; the script's text holds none
    assert 'create "${ALIGN_SERVED_MODEL}"' in script and "qwen2.5" not in script
    init_env = {item["name"]: item["value"] for item in init["env"]}
    assert init_env["ALIGN_MODEL"] == "qwen2.5:72b" and init_env["ALIGN_NUM_THREAD"] == str(THREADS[environment])
    assert init_env["ALIGN_SERVED_MODEL"] == f"qwen2.5:72b-t{THREADS[environment]}"
    assert init["resources"] == container["resources"]
    assert {"name": "ollama-data", "mountPath": "/root/.ollama"} in init["volumeMounts"]
    assert init_env["OLLAMA_MODELS"] == "/root/.ollama/models"


def test_chart_owned_volume_is_kept_and_pulled(run_deploy, gitops_tree, tmp_path, helm_bin, ollama_chart, validate_k8s):
    """Not pre-seeded, chart-created claim: the seed's behaviour, made safe against remediation."""
    root = tmp_path / "repo"
    result = run_deploy(
        "prod",
        {
            "ollama_flux_mode": "gitops",
            "ollama_flux_gitops_dir": str(root),
            "ollama_flux_models_preseeded": False,
            "ollama_flux_pvc_mode": "chart",
        },
    )
    assert result.returncode == 0, result.output[-4000:]
    tree = gitops_tree(root, "prod")
    assert not (tree.app / "persistentvolumeclaim.yaml").exists()
    objects = helm_template(helm_bin, ollama_chart, tree.helmrelease(), tmp_path)
    for obj in objects:
        validate_k8s(obj)
    (claim,) = by_kind(objects, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    (deployment,) = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    hook = pod["containers"][0]["lifecycle"]["postStart"]["exec"]["command"][-1]
    assert "/bin/ollama pull  qwen2.5:72b" in hook
    assert "PARAMETER num_thread 2" in hook and "/bin/ollama create qwen2.5:72b-t2" in hook
