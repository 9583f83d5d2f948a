"""The chart's pod on the real node: Ready and serving from a seeded claim, against the chart's own pull.

pod_ready_seeded_s: the pod as the collection deploys it (the claim seeded beforehand with the base and
the thread-aligned served model, mounted read-only; its postStart hook loads the served model before
the pod is Ready), from `helm install` to Ready and answering /api/show for the served model (polled
every 0.2 s; the median of ROUNDS installs). The
baseline, pod_ready_chart_pull_s, is the same chart with the same model, image, limits and registry,
pulling the model in its postStart hook into an empty claim, as the chart does by default
(ollama.models.pull, with the chart's ollama.insecure for the plain-HTTP registry), to Ready and
answering for the pulled model. The chart's own thread alignment (ollama.models.create) is left out:
its postStart writes the Modelfile to a path named after the model, which fails for a registry-
qualified name (a/b:c). pod_bytes_pulled counts the bytes the registry's CDN sent to the seeded pod
(goal 0; chart_pull_bytes is the baseline's, each round into an emptied claim; the most of any round).
node_ready_s: the node's kubelet start to its Node Ready, and node_start_s containerd's start to
CoreDNS and the NetworkPolicy enforcer Ready, images imported.

Two replicas on the one read-only claim, as the prod inventory deploys them, called through their
Service: replicas_spread_min_share is the share of REQUESTS requests served by the least-used replica
(counted in each pod's log by the replica_spread code inference_check uses; 0.5 is an even split);
restart_failed_requests the requests that failed while four clients called the model during a rolling
restart (every old pod drained and gone; restart_requests is how many were sent); and
store_bytes_written_by_pods the bytes of the claim that differ after the pods started, served and were
replaced (goal 0).

Values come from the ollama_flux role on the real node's test inventory, installed with helm (the
same chart Flux installs), so the figures describe the pod users run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.measure import import_work_tree, make_model, real_node_env, real_node_session
from tests.playbook import role_objects
from tests.services.cluster import cache_dir, chart_dir
from tests.services.ollama import OllamaServer
from tests.services.real_node import STORAGE_CLASS, pod_ready

INVENTORY = Path(__file__).resolve().parent.parent / "tests" / "integration" / "real_node" / "inventory"
MODEL_MB = 128
REQUESTS = 32
# installs timed per case: the readiness probe's schedule moves one by a second or two
ROUNDS = 5


def _pod_serving(cluster, namespace: str, model: str) -> str | None:
    """The pod's IP once it is Ready and serves model."""
    pods = _server_pods(cluster, namespace)
    if not pods or not pod_ready(pods[0]):
        return None
    ip = pods[0]["status"]["podIP"]
    request = urllib.request.Request(f"http://{ip}:11434/api/show", data=json.dumps({"model": model}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        if response.status != 200:
            return None
    return ip


def _bytes_sent_to(cdn_log: Path, ip: str, offset: int = 0) -> int:
    """Blob bytes the registry's CDN logged as sent to ip, after offset bytes of its log."""
    total = 0
    with cdn_log.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    for line in lines:
        fields = line.split('"')
        if line.startswith(ip + " ") and len(fields) > 2 and "/blobs/" in fields[1]:
            status_bytes = fields[2].split()
            total += int(status_bytes[1]) if len(status_bytes) > 1 and status_bytes[1].isdigit() else 0
    return total


def _store_digest(root: Path) -> dict[str, tuple[int, str]]:
    return {str(p.relative_to(root)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def _bytes_changed(before: dict, after: dict) -> int:
    return sum(after[name][0] for name in after if before.get(name) != after[name]) + sum(
        before[name][0] for name in before if name not in after)


def _generate(url: str, model: str) -> bool:
    body = json.dumps({"model": model, "prompt": "Say hi.", "stream": False, "options": {"num_predict": 4}})
    request = urllib.request.Request(url + "/api/generate", data=body.encode(),
                                      headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status == 200 and "response" in json.loads(response.read())
    except OSError:
        return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/version", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _server_pods(cluster, namespace: str, terminating: bool = False) -> list[dict]:
    """The chart's server pods, those terminating too when asked."""
    return [p for p in cluster.get("v1", "Pod", namespace=namespace,
                                   label_selector="app.kubernetes.io/name=ollama")["items"]
            if terminating or not p["metadata"].get("deletionTimestamp")]


def _pod_logs(cluster, namespace: str, pods: list[dict]) -> list[dict]:
    return [{"name": p["metadata"]["name"], "log": cluster.log(namespace, p["metadata"]["name"], "ollama")}
            for p in pods]


def _replicas(cluster, namespace: str, url: str, model: str, store: Path) -> dict[str, float]:
    """Spread, a rolling restart under load, and what the pods wrote, for two replicas on namespace's claim."""
    before_store = _store_digest(store)
    pods = cluster.wait_for("two replicas Ready", lambda: len(p := [x for x in _server_pods(cluster, namespace)
                                                                    if pod_ready(x)]) == 2 and p, timeout=600)
    # Ready pods are not yet a Service that answers: kube-proxy programs the endpoints a moment later
    cluster.wait_for("the Service answering", lambda: _answers(url), timeout=60)
    logs_before = _pod_logs(cluster, namespace, pods)
    with ThreadPoolExecutor(4) as pool:
        answered = list(pool.map(lambda _: _generate(url, model), range(REQUESTS)))
    assert all(answered), f"{answered.count(False)} of {REQUESTS} requests failed before the restart"
    # the filter inference_check counts each replica's requests with, from the work tree as Ansible imports it
    import_work_tree()
    from ansible_collections.aiplatform.ollama.plugins.module_utils.replica_spread import spread

    shares = spread(_pod_logs(cluster, namespace, pods), logs_before, path="/api/generate")

    old = {p["metadata"]["name"] for p in pods}
    stop = threading.Event()
    outcomes: list[bool] = []

    def client():
        while not stop.is_set():
            outcomes.append(_generate(url, model))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        deployment = cluster.get("apps/v1", "Deployment", namespace=namespace)["items"][0]["metadata"]["name"]
        cluster.request("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}",
                        {"spec": {"template": {"metadata": {"annotations": {
                            "kubectl.kubernetes.io/restartedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}},
                        "application/strategic-merge-patch+json")
        cluster.wait_for("the rolling restart to replace both pods", lambda: (
            len(now := cluster.get("v1", "Pod", namespace=namespace,
                                   label_selector="app.kubernetes.io/name=ollama")["items"]) == 2
            and not {p["metadata"]["name"] for p in now} & old and all(pod_ready(p) for p in now)), timeout=600)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return {"replicas_spread_min_share": round(shares["min_share"], 3),
            "restart_failed_requests": outcomes.count(False), "restart_requests": len(outcomes),
            "store_bytes_written_by_pods": _bytes_changed(before_store, _store_digest(store))}


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench_real_node_") as tmp:
        work = Path(tmp)
        with real_node_session(work) as (cluster, registry, collections):
            node = cluster.node
            model = registry.push_model(make_model(work / "model.gguf", seed=3, size_mb=MODEL_MB),
                                        name="library/bench", tag="latest")
            env = real_node_env(cluster, model.ref)
            helm = os.environ.get("HELM_BIN") or str(cache_dir() / "bin" / "helm")
            helm_env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HELM_CACHE_HOME": str(work / "helm"),
                        "HELM_CONFIG_HOME": str(work / "helm"), "HELM_DATA_HOME": str(work / "helm")}
            figures = {"node_ready_s": round(node.kubelet_ready_seconds, 2),
                       "node_start_s": round(node.ready_seconds, 2)}
            # case: (the role's variables, the model the pod must serve, the figures' names)
            # one pod each: the time to one pod Ready
            cases = {
                "seeded": ({"ollama_flux_models_preseeded": True, "ollama_flux_replicas": 1}, f"{model.ref}-t2",
                           ("pod_ready_seeded_s", "pod_bytes_pulled")),
                "chart-pull": ({"ollama_flux_models_preseeded": False, "ollama_flux_thread_alignment": "off",
                                "ollama_flux_replicas": 1,
                                "ollama_flux_extra_values": {"ollama": {"insecure": True}}}, model.ref,
                               ("pod_ready_chart_pull_s", "chart_pull_bytes")),
                # the prod inventory's two replicas, replaced by the rolling update site.yml chooses when the
                # preflight finds room for a surge pod (rendered alone here, the role does not read the nodes)
                "replicas": ({"ollama_flux_models_preseeded": True, "ollama_flux_update_strategy": "RollingUpdate"},
                             f"{model.ref}-t2", ()),
            }

            for case, (role_vars, served, figure_names) in cases.items():
                namespace = f"bench-{case}"
                claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": {"name": "models", "namespace": namespace},
                         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": STORAGE_CLASS,
                                  "resources": {"requests": {"storage": "1Gi"}}}}
                cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, claim)
                bound = cluster.wait_for("claim Bound", lambda ns=namespace: (c := cluster.get(
                    "v1", "PersistentVolumeClaim", "models", ns))["status"].get("phase") == "Bound" and c)
                store = node.volume_path(bound) / "models"
                if role_vars["ollama_flux_models_preseeded"]:
                    # the seeded claim: the model's files in the volume, as the seed Job leaves them
                    with OllamaServer.start(work / f"seeder-{case}", env={"OLLAMA_NOPRUNE": "1"},
                                            models_dir=store) as seeder:
                        seeder.cli("pull", "--insecure", model.ref)
                        seeder.derive(served, model.ref, num_thread=2)
                (work / case).mkdir()
                release = role_objects(collections, "ollama_flux", str(INVENTORY), "__ollama_flux_helmrelease_obj",
                                       work / case, {**role_vars, "ollama_flux_pvc_name": "models",
                                                     "ollama_flux_namespace": namespace,
                                                     # the release installed below: the placement's pod
                                                     # affinity selects the release's own pods by name
                                                     "ollama_flux_release_name": "ollama"}, env=env)
                values = work / f"{case}-values.json"
                values.write_text(json.dumps(release["spec"]["values"]))
                install = [helm, "install", "ollama", str(chart_dir()), "-n", namespace, "-f", str(values)]
                if case == "replicas":
                    subprocess.run(install, check=True, capture_output=True, env=helm_env)
                    service = cluster.get("v1", "Service", "ollama", namespace)["spec"]["clusterIP"]
                    figures.update(_replicas(cluster, namespace, f"http://{service}:11434", served, store))
                    continue
                seconds, pulled = [], []
                cdn_log = registry.workdir / "cdn" / "access.log"
                for _ in range(ROUNDS):
                    if not role_vars["ollama_flux_models_preseeded"]:
                        shutil.rmtree(store, ignore_errors=True)  # an empty claim again, for the chart's own pull
                    logged = cdn_log.stat().st_size if cdn_log.exists() else 0
                    # timed on this machine's clock from the install: a pod's creationTimestamp has whole seconds
                    installed = time.monotonic()
                    subprocess.run(install, check=True, capture_output=True, env=helm_env)
                    ip = cluster.wait_for(f"{case} pod Ready and serving {served}",
                                          lambda ns=namespace, m=served: _pod_serving(cluster, ns, m), timeout=600)
                    seconds.append(time.monotonic() - installed)
                    pulled.append(_bytes_sent_to(cdn_log, ip, logged))
                    # the node's two CPUs hold the next pod only once this one is gone
                    subprocess.run([helm, "uninstall", "ollama", "-n", namespace, "--wait"], check=True,
                                   capture_output=True, env=helm_env)
                    cluster.wait_for(f"{case} pods gone",
                                     lambda ns=namespace: not _server_pods(cluster, ns, terminating=True), timeout=300)
                ready_figure, bytes_figure = figure_names
                figures[ready_figure] = round(statistics.median(seconds), 2)
                figures[bytes_figure] = max(pulled)
            figures["pod_ready_seeded_vs_chart_pull"] = (figures["pod_ready_seeded_s"]
                                                         / figures["pod_ready_chart_pull_s"])
            return figures
