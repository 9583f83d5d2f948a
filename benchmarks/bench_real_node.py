"""The chart's pod on the real node: Ready and serving from a seeded claim, against the chart's own pull.

pod_ready_seeded_s: the pod as the collection deploys it (the claim seeded beforehand, the
align-threads init container, no postStart hook), from its creation to Ready and answering /api/show
for the served model. The baseline, pod_ready_chart_pull_s, is the same chart with the same model,
image, limits and registry, pulling the model in its postStart hook into an empty claim, as the chart
does by default (ollama.models.pull, with the chart's ollama.insecure for the plain-HTTP registry),
to Ready and answering for the pulled model. The chart's own thread alignment (ollama.models.create)
is left out: its postStart writes the Modelfile to a path named after the model, which fails for a
registry-qualified name (a/b:c). pod_bytes_pulled counts the bytes the registry's CDN sent to the
seeded pod (goal 0; chart_pull_bytes is the baseline's).
node_ready_s: the node's kubelet start to its Node Ready, and node_start_s containerd's start to
CoreDNS and the NetworkPolicy enforcer Ready, images imported.

Values come from the ollama_flux role on the real node's test inventory, installed with helm (the
same chart Flux installs), so the figures describe the pod users run.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.measure import collection_path, make_model
from tests.playbook import role_objects
from tests.services.cluster import Cluster, cache_dir, chart_dir
from tests.services.ollama import OllamaServer
from tests.services.real_node import NODE_IP, SERVICES_IP, STORAGE_CLASS, pod_ready
from tests.services.registry import Registry

INVENTORY = Path(__file__).resolve().parent.parent / "tests" / "integration" / "real_node" / "inventory"
MODEL_MB = 128


def _pod_serving(cluster, namespace: str, model: str) -> tuple[float, str] | None:
    """(seconds from the pod's creation to now, its IP) once it is Ready and serves model."""
    pods = cluster.get("v1", "Pod", namespace=namespace)["items"]
    if not pods or not pod_ready(pods[0]):
        return None
    ip = pods[0]["status"]["podIP"]
    request = urllib.request.Request(f"http://{ip}:11434/api/show", data=json.dumps({"model": model}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        if response.status != 200:
            return None
    created = pods[0]["metadata"]["creationTimestamp"]
    created_s = time.mktime(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    return time.time() - created_s, ip


def _bytes_sent_to(cdn_log: Path, ip: str) -> int:
    total = 0
    for line in cdn_log.read_text().splitlines():
        fields = line.split('"')
        if line.startswith(ip + " ") and len(fields) > 2 and "/blobs/" in fields[1]:
            status_bytes = fields[2].split()
            total += int(status_bytes[1]) if len(status_bytes) > 1 and status_bytes[1].isdigit() else 0
    return total


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench_real_node_") as tmp:
        work = Path(tmp)
        collections = collection_path(work / "collections")
        with Cluster.start(work / "cluster", with_real_node=True) as cluster, \
                Registry.start(work / "registry", host=NODE_IP, cdn_host=SERVICES_IP) as registry:
            node = cluster.node
            model = registry.push_model(make_model(work / "model.gguf", seed=3, size_mb=MODEL_MB),
                                        name="library/bench", tag="latest")
            env = {**cluster.env(), "AIPLATFORM_TEST_NODE_MODEL": model.ref,
                   "AIPLATFORM_TEST_OLLAMA_IMAGE": node.images["ollama"],
                   "AIPLATFORM_TEST_TOOLS_IMAGE": node.images["tools"]}
            helm = os.environ.get("HELM_BIN") or str(cache_dir() / "bin" / "helm")
            helm_env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HELM_CACHE_HOME": str(work / "helm"),
                        "HELM_CONFIG_HOME": str(work / "helm"), "HELM_DATA_HOME": str(work / "helm")}
            figures = {"node_ready_s": round(node.kubelet_ready_seconds, 2),
                       "node_start_s": round(node.ready_seconds, 2)}
            # case: (the role's variables, the model the pod must serve, the figures' names)
            cases = {
                "seeded": ({"ollama_flux_models_preseeded": True}, f"{model.ref}-t2",
                           ("pod_ready_seeded_s", "pod_bytes_pulled")),
                "chart-pull": ({"ollama_flux_models_preseeded": False, "ollama_flux_thread_alignment": "off",
                                "ollama_flux_extra_values": {"ollama": {"insecure": True}}}, model.ref,
                               ("pod_ready_chart_pull_s", "chart_pull_bytes")),
            }

            for case, (role_vars, served, (ready_figure, bytes_figure)) in cases.items():
                namespace = f"bench-{case}"
                claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": {"name": "models", "namespace": namespace},
                         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": STORAGE_CLASS,
                                  "resources": {"requests": {"storage": "1Gi"}}}}
                cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, claim)
                bound = cluster.wait_for("claim Bound", lambda ns=namespace: (c := cluster.get(
                    "v1", "PersistentVolumeClaim", "models", ns))["status"].get("phase") == "Bound" and c)
                if role_vars["ollama_flux_models_preseeded"]:
                    # the seeded claim: the model's files in the volume, as the seed Job leaves them
                    with OllamaServer.start(work / "seeder", env={"OLLAMA_NOPRUNE": "1"},
                                            models_dir=node.volume_path(bound) / "models") as seeder:
                        seeder.cli("pull", "--insecure", model.ref)
                (work / case).mkdir()
                release = role_objects(collections, "ollama_flux", str(INVENTORY), "__ollama_flux_helmrelease_obj",
                                       work / case, {**role_vars, "ollama_flux_pvc_name": "models",
                                                     "ollama_flux_namespace": namespace}, env=env)
                values = work / f"{case}-values.json"
                values.write_text(json.dumps(release["spec"]["values"]))
                subprocess.run([helm, "install", "ollama", str(chart_dir()), "-n", namespace, "-f", str(values)],
                               check=True, capture_output=True, env=helm_env)
                seconds, ip = cluster.wait_for(f"{case} pod Ready and serving {served}",
                                               lambda ns=namespace, m=served: _pod_serving(cluster, ns, m),
                                               timeout=600)
                figures[ready_figure] = round(seconds, 2)
                figures[bytes_figure] = _bytes_sent_to(registry.workdir / "cdn" / "access.log", ip)
            figures["pod_ready_seeded_vs_chart_pull"] = (figures["pod_ready_seeded_s"]
                                                         / figures["pod_ready_chart_pull_s"])
            return figures
