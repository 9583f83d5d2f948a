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
        # the read-only store: never pruned at start
        "OLLAMA_NOPRUNE": "1",
    }
    assert all(isinstance(v, str) for v in env.values())
    # Ready as soon as Ollama answers, not after the chart's 30 s delay
    assert container["readinessProbe"]["initialDelaySeconds"] == 1
    assert container["readinessProbe"]["periodSeconds"] == 2

    # pre-seeded store: the claim's models directory, read-only in the volume and in the mount, under an
    # emptyDir at the chart's mount path for Ollama's key; nothing creates a model in the pod
    assert not by_kind(objects, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["ollama-data"] == {"name": "ollama-data", "emptyDir": {}}
    assert volumes["ollama-store"] == {
        "name": "ollama-store", "persistentVolumeClaim": {"claimName": "ollama-models", "readOnly": True}}
    assert container["volumeMounts"] == [
        {"name": "ollama-data", "mountPath": "/root/.ollama"},
        {"name": "ollama-store", "mountPath": "/root/.ollama/models", "subPath": "models", "readOnly": True},
    ]
    assert "initContainers" not in pod
    # the hooks: a new replica loads the model clients call before it is Ready (its name an argument of
    # the script), a stopping one serves on while the Service drops it
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    served = annotations["aiplatform.ollama/served-model"]
    assert served == annotations["aiplatform.ollama/model"] + {"dev": "-t1", "prod": "-t2"}[environment]
    warm = container["lifecycle"]["postStart"]["exec"]["command"]
    assert warm[:2] == ["/bin/sh", "-c"] and warm[-2:] == ["warm", served] and served not in warm[2]
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 30}}
    assert pod["terminationGracePeriodSeconds"] == 60

    replicas = {"dev": 1, "prod": 2}[environment]
    assert deployment["spec"]["replicas"] == replicas
    # the preflight is off here: the nodes were not read, so no room for a surge pod is known
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # a ReadWriteOnce claim: every replica (and a surge pod) on the claim's node
    (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert "topologySpreadConstraints" not in pod


def test_chart_spreads_replicas_on_a_shared_claim(run_deploy, gitops_tree, tmp_path, helm_bin, ollama_chart,
                                                  validate_k8s):
    """A claim every node may mount: the replicas spread over nodes; a known surge room rolls them."""
    root = tmp_path / "repo"
    result = run_deploy(
        "prod",
        {"ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(root), "ollama_flux_replicas": 3,
         "ollama_flux_pvc_access_modes": ["ReadOnlyMany"], "ollama_flux_update_strategy": "RollingUpdate"},
    )
    assert result.returncode == 0, result.output[-4000:]
    objects = helm_template(helm_bin, ollama_chart, gitops_tree(root, "prod").helmrelease(), tmp_path)
    for obj in objects:
        validate_k8s(obj)
    (deployment,) = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert pod["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}}]
    assert "affinity" not in pod
    budget = yaml.safe_load((gitops_tree(root, "prod").app / "poddisruptionbudget.yaml").read_text())
    validate_k8s(budget)
    assert budget["spec"] == {"maxUnavailable": 1,
                              "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}}


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
            # the chart pulls into the store at start: one writer
            "ollama_flux_replicas": 1,
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
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["volumes"][0] == {"name": "ollama-data", "persistentVolumeClaim": {"claimName": "ollama"}}
    hook = pod["containers"][0]["lifecycle"]["postStart"]["exec"]["command"][-1]
    assert "/bin/ollama pull  qwen2.5:72b" in hook
    assert "PARAMETER num_thread 2" in hook and "/bin/ollama create qwen2.5:72b-t2" in hook
