"""A model rollout on the real node: rollout.yml from one model to another under load, and a rollback.

The prod inventory scaled to the test cluster's real node (tests/integration/real_node/inventory: two
replicas on one read-only claim, Flux, the gateway and the controller pod as in its tests) serves model
A (MODEL_MB MB). While four clients call A through the Agent Gateway, rollout.yml rolls out model B
(same size) with model_rollout_prune false: rollout_failed_requests counts the requests that failed
(goal 0; rollout_requests is how many were sent), and rollout_seconds is the time from rollout.yml's
start to both replicas Ready serving B (seed, flip: each new pod loads B before it is Ready). The
baseline, restart_seconds, is a rolling restart of the same two replicas with no model change (the
same pods replaced the same way): rollout_vs_restart is their ratio, what seeding and loading the next
model add. Then rollout.yml -e model_rollout_rollback=true returns to A: rollback_bytes_downloaded is
what the registry's CDN sent meanwhile (goal 0), rollback_seconds its duration.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from benchmarks.measure import make_model, real_node_env, real_node_session
from tests.integration.real_node.conftest import (
    CONTROLLER_POD,
    GATEWAY_CONF,
    GATEWAY_NAMESPACE,
    INVENTORY,
    NAMESPACE,
    RELEASE,
    gateway_load,
    gateway_objects,
    namespace,
    start_gateway,
    tools_pod,
    wait_pod_ready,
)
from tests.playbook import run_playbook
from tests.services.real_node import pod_ready

MODEL_MB = 128


def _serving(cluster, model: str) -> bool:
    """Both replicas Ready and annotated with model, no other pod of the release left."""
    pods = cluster.get("v1", "Pod", namespace=NAMESPACE,
                       label_selector=f"app.kubernetes.io/instance={RELEASE}")["items"]
    return len(pods) == 2 and all(pod_ready(p) and not p["metadata"].get("deletionTimestamp")
                                  and p["metadata"]["annotations"].get("aiplatform.ollama/model") == model
                                  for p in pods)


def _cdn_bytes(cdn_log: Path) -> int:
    """Body bytes the CDN has sent so far (the combined log's field after the status)."""
    total = 0
    for line in cdn_log.read_text().splitlines():
        fields = line.split('"')
        status_bytes = fields[2].split() if len(fields) > 2 else []
        if len(status_bytes) > 1 and status_bytes[1].isdigit():
            total += int(status_bytes[1])
    return total


def _restart_seconds(cluster) -> float:
    """A rolling restart of the release's Deployment (what `kubectl rollout restart` does) until both
    replicas are new and Ready."""
    old = {p["metadata"]["name"] for p in cluster.get("v1", "Pod", namespace=NAMESPACE)["items"]}
    deployment = cluster.get("apps/v1", "Deployment", namespace=NAMESPACE)["items"][0]["metadata"]["name"]
    started = time.monotonic()
    cluster.request("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{deployment}",
                    {"spec": {"template": {"metadata": {"annotations": {
                        "kubectl.kubernetes.io/restartedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}},
                    "application/strategic-merge-patch+json")
    cluster.wait_for("the rolling restart", lambda: (
        len(pods := cluster.get("v1", "Pod", namespace=NAMESPACE)["items"]) == 2
        and not {p["metadata"]["name"] for p in pods} & old and all(pod_ready(p) for p in pods)),
        timeout=600)
    return time.monotonic() - started


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench_rollout_") as tmp:
        work = Path(tmp)
        with real_node_session(work) as (cluster, registry, collections):
            node = cluster.node
            first, second = (registry.push_model(make_model(work / f"{name}.gguf", seed=seed, size_mb=MODEL_MB),
                                                 name=f"library/{name}", tag="latest")
                             for name, seed in (("first", 11), ("second", 12)))
            cluster.apply(namespace(GATEWAY_NAMESPACE))
            start_gateway(cluster, gateway_objects("agentgateway-proxy", node.images["gateway"], GATEWAY_CONF))
            cluster.apply(tools_pod(CONTROLLER_POD, GATEWAY_NAMESPACE, node.images["tools"]))
            wait_pod_ready(cluster, GATEWAY_NAMESPACE, CONTROLLER_POD)
            env = real_node_env(cluster, first.ref)

            def playbook(name: str, extra_vars: dict | None = None):
                run = run_playbook(collections, name, str(INVENTORY), extra_vars, env=env, timeout=1800,
                                   launcher=node.launcher(GATEWAY_NAMESPACE, CONTROLLER_POD))
                assert run.returncode == 0, run.output[-6000:]
                return run

            playbook("site.yml")
            restart_s = _restart_seconds(cluster)

            served_at: list[float] = []
            watching = threading.Event()

            def watch():
                while not watching.is_set():
                    if _serving(cluster, second.ref):
                        served_at.append(time.monotonic())
                        return
                    time.sleep(0.2)

            with gateway_load(cluster, f"{first.ref}-t2") as codes:
                watcher = threading.Thread(target=watch)
                started = time.monotonic()
                watcher.start()
                try:
                    playbook("rollout.yml", {"model_rollout_model": second.ref, "model_rollout_prune": False})
                finally:
                    watching.set()
                    watcher.join()
            assert served_at, "the rollout ended without both replicas serving the next model"

            cdn_log = registry.workdir / "cdn" / "access.log"
            before = _cdn_bytes(cdn_log)
            rollback_started = time.monotonic()
            playbook("rollout.yml", {"model_rollout_rollback": True})
            rollback_s = time.monotonic() - rollback_started
            assert _serving(cluster, first.ref)
            rollout_s = served_at[0] - started
            return {"rollout_failed_requests": sum(code != "200" for code in codes), "rollout_requests": len(codes),
                    "rollout_seconds": round(rollout_s, 1), "restart_seconds": round(restart_s, 1),
                    "rollout_vs_restart": rollout_s / restart_s,
                    "rollback_bytes_downloaded": _cdn_bytes(cdn_log) - before,
                    "rollback_seconds": round(rollback_s, 1)}
