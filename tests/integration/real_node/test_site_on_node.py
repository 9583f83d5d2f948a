"""site.yml in apply mode on the prod inventory scaled to the real node: the seed Job fills a local
volume in a real container, the chart's pod starts on it without pulling, serves the thread-aligned
model, and answers through the Agent Gateway by DNS name; the NetworkPolicy admits the gateway and
refuses the rest; diagnose probes from a real pod.

The tests run in file order and share the release the first one builds, as a user's runs would.
"""

from __future__ import annotations

import json
import re

from tests.integration.cluster.conftest import HELMRELEASE, condition, is_ready
from tests.integration.real_node.conftest import (
    CONTROLLER_POD,
    DIRECT_URL,
    GATEWAY_NAMESPACE,
    GATEWAY_URL,
    NAMESPACE,
    RELEASE,
    namespace,
    pod_exec,
    tools_pod,
    wait_pod_ready,
)
from tests.services.real_node import NODE_NAME, pod_ready

FLUX = "flux-system"
OUTSIDER_NAMESPACE = "not-admitted"


def server_pods(cluster) -> list[dict]:
    return [pod for pod in cluster.get("v1", "Pod", namespace=NAMESPACE,
                                       label_selector=f"app.kubernetes.io/instance={RELEASE}")["items"]
            if not pod["metadata"].get("deletionTimestamp")]


def seed_pods(cluster) -> list[dict]:
    return cluster.get("v1", "Pod", namespace=NAMESPACE,
                       label_selector="app.kubernetes.io/component=model-cache")["items"]


def served_model_name(output: str) -> str:
    match = re.search(r"direct: healthy, model (\S+)", output)
    assert match, output[-4000:]
    return match.group(1)


def test_site_seeds_a_real_claim_and_the_pod_serves_it_without_pulling(cluster, node, node_registry, node_model,
                                                                       run_on_node, gateway):
    run = run_on_node("site.yml")
    assert run.returncode == 0, run.output[-8000:]

    # the seed Job ran in a real container on the node and completed
    seeders = seed_pods(cluster)
    assert seeders and all(pod["spec"]["nodeName"] == NODE_NAME for pod in seeders)
    assert [pod["status"]["phase"] for pod in seeders][-1] == "Succeeded"

    # the chart's pod runs on the node, on the seeded claim: its init container aligned the model
    [pod] = server_pods(cluster)
    assert pod["spec"]["nodeName"] == NODE_NAME and pod_ready(pod)
    [init] = pod["status"]["initContainerStatuses"]
    assert init["name"] == "align-threads" and init["state"]["terminated"]["reason"] == "Completed"
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    claim = cluster.get("v1", "PersistentVolumeClaim", "ollama-models", NAMESPACE)
    store = node.volume_path(claim) / "models" / "manifests"
    served = served_model_name(run.said)
    assert served.endswith("-t2"), served  # 2000m of CPU: two threads
    manifests = {str(path.relative_to(store)) for path in store.rglob("*") if path.is_file()}
    assert any(path.endswith("library/tiny/latest") for path in manifests), manifests
    assert any(path.endswith("library/tiny/latest-t2") for path in manifests), manifests

    # it pulled nothing: the registry and its CDN served the seed Job's pod (and the preflight, which
    # reads the model's header from the controller), never the server's pod
    server_ip = pod["status"]["podIP"]
    seeder_ips = {p["status"].get("podIP") for p in seeders} - {None}
    cdn = [line.split()[0] for line in (node_registry.workdir / "cdn" / "access.log").read_text().splitlines()
           if "/blobs/" in line]
    assert seeder_ips & set(cdn), cdn
    registry_clients = re.findall(r'remoteaddr="([0-9.]+):', (node_registry.workdir / "registry.log").read_text())
    assert server_ip not in cdn and server_ip not in registry_clients, (server_ip, cdn, set(registry_clients))

    # inference_check answered through the Service and through the gateway pod, by DNS name
    assert f"direct ({DIRECT_URL})" in run.said or f"direct: healthy, model {served}" in run.said
    assert f"agent-gateway: healthy, model {served}" in run.said, run.said[-4000:]

    again = run_on_node("site.yml")
    assert again.returncode == 0, again.output[-8000:]
    assert again.recap["changed"] == 0, again.output[-8000:]


def test_the_network_policy_admits_the_gateway_and_refuses_other_namespaces(cluster, node, gateway):
    cluster.apply(namespace(OUTSIDER_NAMESPACE), tools_pod("outsider", OUTSIDER_NAMESPACE, node.images["tools"]))
    wait_pod_ready(cluster, OUTSIDER_NAMESPACE, "outsider")
    [pod] = server_pods(cluster)
    version = "/api/version"
    curl = ["curl", "-sS", "-m", "4"]

    # admitted: a pod of the gateway's namespace, on the Service's name and on the pod's address
    for url in (DIRECT_URL, f"http://{pod['status']['podIP']}:11434"):
        admitted = pod_exec(cluster, GATEWAY_NAMESPACE, CONTROLLER_POD, [*curl, url + version])
        assert admitted.returncode == 0 and json.loads(admitted.stdout)["version"] == "0.18.3", admitted
    # refused: the same requests from another namespace time out (the enforcer drops the packets)
    for url in (DIRECT_URL, f"http://{pod['status']['podIP']}:11434"):
        refused = pod_exec(cluster, OUTSIDER_NAMESPACE, "outsider", [*curl, url + version])
        assert refused.returncode == 28, refused  # curl: operation timed out
    # the outsider reaches Ollama only the way kagent's agents do: through the gateway
    through = pod_exec(cluster, OUTSIDER_NAMESPACE, "outsider", [*curl, GATEWAY_URL + version])
    assert through.returncode == 0 and json.loads(through.stdout)["version"] == "0.18.3", through


def test_diagnose_probes_from_a_real_pod_and_judges_the_service_healthy(cluster, run_on_node):
    run = run_on_node("diagnose.yml")

    assert run.returncode == 0, run.output[-6000:]
    assert "healthy: pull_stall, oom_killed, pvc_pending, gateway_timeout, model_missing" in run.said, run.said[-3000:]
    # both probes (direct and through the gateway) ran in the probe pod, a real container on the node
    assert "item=direct " in run.output and "item=agent-gateway " in run.output
    events = [event for event in cluster.get("v1", "Event", namespace=NAMESPACE)["items"]
              if event["involvedObject"]["name"].startswith(f"{RELEASE}-diagnose-probe-")]
    reasons = {event["reason"]: event for event in events}
    assert NODE_NAME in reasons["Scheduled"]["message"], events
    assert reasons["Started"]["source"].get("host", reasons["Started"].get("reportingInstance")) == NODE_NAME, events
    release = cluster.get(*HELMRELEASE, RELEASE, FLUX)
    assert is_ready(release), condition(release)
