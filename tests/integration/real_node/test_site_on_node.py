"""site.yml in apply mode on the prod inventory scaled to the real node: the seed Job fills a local
volume in a real container, the chart's pod starts on it without pulling, serves the thread-aligned
model, and answers through the Agent Gateway by DNS name; the NetworkPolicy admits the gateway and
refuses the rest; diagnose probes from a real pod.

Then real OOM kills from memory limits that do not fit, and what the playbooks say about them.
The tests run in file order and share the release the first one builds, as a user's runs would.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import re
import socket
import time

import pytest

from tests.integration.cluster.conftest import HELMRELEASE, condition, is_ready
from tests.integration.real_node.conftest import (
    CONTROLLER_POD,
    DIRECT_URL,
    GATEWAY_NAMESPACE,
    GATEWAY_URL,
    NAMESPACE,
    RELEASE,
    gateway_load,
    gateway_objects,
    namespace,
    pod_exec,
    start_gateway,
    tools_pod,
    wait_pod_ready,
)
from tests.services.real_node import CLUSTER_DNS, NODE_IP, NODE_NAME, STORAGE_CLASS, pod_ready

FLUX = "flux-system"
OUTSIDER_NAMESPACE = "not-admitted"


def server_pods(cluster) -> list[dict]:
    return [pod for pod in cluster.get("v1", "Pod", namespace=NAMESPACE,
                                       label_selector=f"app.kubernetes.io/instance={RELEASE}")["items"]
            if not pod["metadata"].get("deletionTimestamp")]


def deployment_of(cluster) -> dict:
    (deployment,) = cluster.get("apps/v1", "Deployment", namespace=NAMESPACE,
                                label_selector=f"app.kubernetes.io/instance={RELEASE}")["items"]
    return deployment


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

    # the prod inventory's two replicas run on the node, on the seeded claim, and create nothing: the seed
    # Job wrote the thread-aligned model beside the base one
    pods = server_pods(cluster)
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert pod["spec"]["nodeName"] == NODE_NAME and pod_ready(pod)
        assert "initContainerStatuses" not in pod["status"]
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    claim = cluster.get("v1", "PersistentVolumeClaim", "ollama-models", NAMESPACE)
    store = node.volume_path(claim) / "models" / "manifests"
    served = served_model_name(run.said)
    assert served.endswith("-t2"), served  # 2000m of CPU: two threads
    manifests = {str(path.relative_to(store)) for path in store.rglob("*") if path.is_file()}
    assert any(path.endswith("library/tiny/latest") for path in manifests), manifests
    assert any(path.endswith("library/tiny/latest-t2") for path in manifests), manifests

    # they pulled nothing: the registry and its CDN served the seed Job's pod (and the preflight, which
    # reads the model's header from the controller), never a server pod
    seeder_ips = {p["status"].get("podIP") for p in seeders} - {None}
    cdn = [line.split()[0] for line in (node_registry.workdir / "cdn" / "access.log").read_text().splitlines()
           if "/blobs/" in line]
    assert seeder_ips & set(cdn), cdn
    registry_clients = re.findall(r'remoteaddr="([0-9.]+):', (node_registry.workdir / "registry.log").read_text())
    for pod in pods:
        server_ip = pod["status"]["podIP"]
        assert server_ip not in cdn and server_ip not in registry_clients, (server_ip, cdn, set(registry_clients))

    # the preflight found room on the node for a surge pod: rolling updates keep both replicas serving
    assert "2 replica(s), one-node, replaced by RollingUpdate, each draining for 30s." in run.said, run.said[-6000:]
    deployment = deployment_of(cluster)
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}

    # inference_check answered through the Service and through the gateway pod, by DNS name
    assert f"agent-gateway: healthy, model {served}" in run.said, run.said[-4000:]
    # and the parallel requests of kagent's fan-out went through the gateway pod
    assert f"concurrency through agent-gateway ({GATEWAY_URL})" in run.said, run.said[-4000:]
    # and the gateway spread them over both replicas, each answering some
    spread = re.search(r"replica spread through agent-gateway: (\d+) /api/chat requests over 2 pods: .*; min share "
                       r"(\d+) %", run.said)
    assert spread and int(spread.group(1)) >= 16, run.said[-4000:]

    again = run_on_node("site.yml")
    assert again.returncode == 0, again.output[-8000:]
    assert again.recap["changed"] == 0, again.output[-8000:]


def store_files(cluster, node) -> dict[str, str]:
    """Every file of the seeded store on the node's disk: relative path -> sha256 of its bytes."""
    claim = cluster.get("v1", "PersistentVolumeClaim", "ollama-models", NAMESPACE)
    root = node.volume_path(claim)
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def test_the_replicas_mount_the_store_read_only(cluster):
    for pod in server_pods(cluster):
        volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "ollama-store")
        assert volume["persistentVolumeClaim"] == {"claimName": "ollama-models", "readOnly": True}
        (container,) = pod["spec"]["containers"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "ollama-store")
        assert mount["readOnly"] and mount["subPath"] == "models" and mount["mountPath"] == "/root/.ollama/models"
        # the kernel refuses a write, whatever Ollama would try
        written = pod_exec(cluster, NAMESPACE, pod["metadata"]["name"],
                           ["/bin/sh", "-c", "echo x > /root/.ollama/models/written"])
        assert written.returncode != 0 and "Read-only file system" in written.stderr, written


def _restart_under_load(cluster, served: str) -> list[str]:
    """A rolling restart of the Deployment while four clients call the model through the gateway: the
    status of every request sent until the last old pod is gone."""
    deployment = deployment_of(cluster)
    name = deployment["metadata"]["name"]
    old = {pod["metadata"]["name"] for pod in server_pods(cluster)}
    with gateway_load(cluster, served) as codes:
        # what `kubectl rollout restart` does
        cluster.request("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}",
                        {"spec": {"template": {"metadata": {"annotations": {
                            "kubectl.kubernetes.io/restartedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}},
                        "application/strategic-merge-patch+json")

        def rolled():
            pods = cluster.get("v1", "Pod", namespace=NAMESPACE,
                               label_selector=f"app.kubernetes.io/instance={RELEASE}")["items"]
            names = {pod["metadata"]["name"] for pod in pods}
            return (not names & old and len(pods) == 2 and all(pod_ready(pod) for pod in pods)) and names

        new = cluster.wait_for("the rolling restart to replace both pods", rolled, timeout=300)
    assert len(new) == 2
    return codes


def test_a_rolling_restart_under_load_fails_no_request_and_writes_nothing(cluster, node, run_on_node):
    served = served_model_name(run_on_node("verify.yml", {"inference_check_concurrency": 0}).said)
    before = store_files(cluster, node)

    codes = _restart_under_load(cluster, served)

    # every request through the gateway was answered, while each old replica drained and stopped
    assert len(codes) >= 8 and set(codes) == {"200"}, collections.Counter(codes)
    # the new replicas started on the store and served from it without writing a byte
    assert store_files(cluster, node) == before
    # and the release is as the playbook left it: a rerun changes nothing
    again = run_on_node("deploy.yml")
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-6000:]


def test_check_mode_on_the_replicas_reports_and_changes_nothing(cluster, run_on_node):
    deployment = deployment_of(cluster)
    run = run_on_node("site.yml", {"ollama_flux_replicas": 3}, "--check", "--diff")
    assert run.returncode == 0, run.output[-6000:]
    assert "3 replica(s), one-node, replaced by" in run.said, run.said[-4000:]
    assert re.search(r"replicaCount\W{1,4}3\b", run.output), run.output[-6000:]
    assert deployment_of(cluster)["spec"] == deployment["spec"]
    assert len(server_pods(cluster)) == 2


def test_more_replicas_than_the_node_holds_are_refused_before_anything_changes(cluster, run_on_node):
    deployment = deployment_of(cluster)
    run = run_on_node("site.yml", {"ollama_flux_replicas": 400})
    assert run.returncode != 0
    assert "Preflight (preflight_mode=enforce): 400 replica(s) x 1.0 GiB each" in run.said, run.said[-4000:]
    assert "Fix: lower ollama_flux_replicas to" in run.said
    # refused at the preflight: the seed and the deployment never ran
    assert "Pre-seed the Ollama model store" not in run.output and "Deploy Ollama through Flux" not in run.output
    assert deployment_of(cluster)["spec"] == deployment["spec"]


def test_the_network_policy_admits_the_gateway_and_refuses_other_namespaces(cluster, node, gateway):
    cluster.apply(namespace(OUTSIDER_NAMESPACE), tools_pod("outsider", OUTSIDER_NAMESPACE, node.images["tools"]))
    wait_pod_ready(cluster, OUTSIDER_NAMESPACE, "outsider")
    pod = server_pods(cluster)[0]
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


@contextlib.contextmanager
def _silent_upstream():
    """A port on the node's address that accepts connections and never answers: an upstream that hangs."""
    with socket.socket() as sock:
        sock.bind((NODE_IP, 0))
        sock.listen(16)
        yield f"http://{NODE_IP}:{sock.getsockname()[1]}"


@contextlib.contextmanager
def _broken_gateway(cluster, node, upstream: str):
    """A second gateway pod in the gateway's namespace (so the NetworkPolicy admits it), proxying to
    upstream with short timeouts: its URL by DNS name. Gone again afterwards."""
    # resolved per request: a dead upstream's name need not resolve for nginx to start
    conf = (f"server {{ listen 9080; resolver {CLUSTER_DNS} valid=5s; set $upstream {upstream};"
            " location / { proxy_pass $upstream; proxy_read_timeout 2s; proxy_connect_timeout 2s; } }\n")
    objects = gateway_objects("broken-gateway", node.images["gateway"], conf)
    try:
        yield start_gateway(cluster, objects)
    finally:
        for obj in reversed(objects):
            cluster.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], GATEWAY_NAMESPACE)


@pytest.mark.parametrize("upstream", ["dead", "hanging"])
def test_diagnose_blames_the_gateway_when_ollama_answers_directly(cluster, node, run_on_node, upstream):
    with contextlib.ExitStack() as stack:
        # dead: a Service with no pod behind it; hanging: a socket that never answers
        target = (stack.enter_context(_silent_upstream()) if upstream == "hanging"
                  else f"http://{RELEASE}-nobody.{NAMESPACE}.svc.cluster.local:11434")
        gateway = {"name": "agent-gateway", "url": stack.enter_context(_broken_gateway(cluster, node, target))}
        if upstream == "hanging":
            # a token on the gateway's endpoint, as kagent's route may need: that probe runs from the
            # controller (a token has no place on a pod's command line) and stays out of verbose output
            gateway["api_key"] = "diagnose-token"
        endpoints = [{"name": "direct", "url": DIRECT_URL}, gateway]
        run = run_on_node("diagnose.yml", {"diagnose_endpoints": endpoints, "diagnose_probe_timeout": 10}, "-v")

    said = run.said
    assert run.returncode != 0 and run.recap["failed"] == 1
    assert "diagnose-token" not in run.output
    assert "1 runbook(s) apply: inference requests timing out through the Agent Gateway: Ollama answers " \
           "directly but not through the gateway" in said, run.output[-3000:]
    assert ("502" if upstream == "dead" else "504") in said
    assert "Fix: check the NetworkPolicy admits the gateway's namespace" in said
    # the direct probe ran in a probe pod on the node, which is gone again
    assert f"evidence: probe direct {DIRECT_URL} from pod {RELEASE}-diagnose-probe-" in said
    if upstream == "dead":
        assert f"evidence: probe agent-gateway {gateway['url']} from pod {RELEASE}-diagnose-probe-" in said
    assert not [pod for pod in cluster.get("v1", "Pod", namespace=NAMESPACE)["items"]
                if "diagnose-probe" in pod["metadata"]["name"] and not pod["metadata"].get("deletionTimestamp")]


def test_verify_diagnoses_a_failing_gateway_before_it_fails(cluster, node, run_on_node):
    with _broken_gateway(cluster, node, f"http://{RELEASE}-nobody.{NAMESPACE}.svc.cluster.local:11434") as broken:
        endpoints = [{"name": "direct", "url": DIRECT_URL}, {"name": "agent-gateway", "url": broken}]
        run = run_on_node("verify.yml", {"inference_check_endpoints": endpoints})

    said = run.said
    assert run.returncode != 0 and run.recap["failed"] == 1
    assert "RUNBOOK inference requests timing out through the Agent Gateway" in said, run.output[-3000:]
    assert "cause: Ollama answers directly but not through the gateway" in said
    assert f"agent-gateway ({broken}) failed at level" in said


def test_diagnose_names_a_model_missing_from_the_store_and_its_fix(run_on_node):
    run = run_on_node("diagnose.yml", {"diagnose_model": "never-seeded:latest"})

    said = run.said
    assert run.returncode != 0 and run.recap["failed"] == 1
    assert "1 runbook(s) apply: model not available after pod reschedule: never-seeded:latest is not in the " \
           "served store" in said, run.output[-3000:]
    assert "Fix: seed it (seed_models.yml writes the served model beside the base one)" in said


ANNOTATION = "node.aiplatform.io/memory-bandwidth"


@pytest.fixture
def unannotated_node(cluster):
    """The real node, without node_tuning's labels and annotation after the test."""
    yield
    labels = cluster.get("v1", "Node", NODE_NAME)["metadata"].get("labels", {})
    cluster.request("PATCH", f"/api/v1/nodes/{NODE_NAME}", {"metadata": {
        "annotations": {ANNOTATION: None},
        "labels": {key: None for key in labels if key.startswith("node.aiplatform.io/")}}},
        "application/merge-patch+json")


def test_bandwidth_measured_on_the_node_is_the_roofline_of_its_pod(cluster, run_on_node, unannotated_node, tmp_path):
    verify = {"inference_check_level": "generate", "inference_check_concurrency": 0}
    before = run_on_node("verify.yml", verify)
    assert before.returncode == 0, before.output[-4000:]
    assert (f"decode roofline not reported: the memory bandwidth is unknown (node {NODE_NAME} has no annotation "
            f"{ANNOTATION})") in before.said, before.output[-4000:]

    # node_tuning measures this machine, which is the node the pod runs on
    tune = {"node_tuning_report_only": False, "node_tuning_labels_enabled": True,
            "node_tuning_k8s_node_name": NODE_NAME, "ansible_become": False,
            "node_tuning_facts_dir": str(tmp_path / "facts.d")}
    first = run_on_node("tune_nodes.yml", tune, "--tags", "node_tuning_labels")
    assert first.returncode == 0, first.output[-4000:]
    annotated = cluster.get("v1", "Node", NODE_NAME)["metadata"]["annotations"][ANNOTATION]
    assert annotated.isdigit() and int(annotated) > 0
    again = run_on_node("tune_nodes.yml", tune, "--tags", "node_tuning_labels")
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-4000:]

    after = run_on_node("verify.yml", verify)
    assert after.returncode == 0, after.output[-4000:]
    line = re.search(r"direct: decode ([\d.]+) tok/s is ([\d.]+) % of the roofline ([\d.]+) tok/s \(([\d.]+) GB/s / "
                     rf"[\d.]+ MB read per token\); bandwidth \"(\d+)\" from the annotation {ANNOTATION} of node "
                     rf"{NODE_NAME};", after.said)
    assert line, after.output[-4000:]
    assert line.group(5) == annotated


# Real OOM kills, from memory limits below what Ollama needs (the kernel's OOM killer at the container's
# memory cgroup limit, no stand-in). A limit below the server's own need: the container is OOMKilled as
# it starts and deploy.yml names it. A limit above the server's need but below the model's: the pod is
# Ready (a model loads on the first request), then the kernel kills the runner loading the model; on
# cgroup v1 nodes, as this one, only that process dies and the pod shows no OOMKilled, so verify.yml
# names it from Ollama's answer. Both leave the release as they found it.

# the preflight would refuse these limits before anything is applied: the point is what happens
# when a limit that does not fit reaches the cluster anyway (an estimate that was off, a model swapped)
PAST_THE_PREFLIGHT = {"preflight_mode": "warn"}


@pytest.fixture(scope="module")
def larger_model(node_registry, model_factory):
    """A 64 MiB model: its runner needs far more than the server's own ~20 MiB."""
    return node_registry.push_model(model_factory.large(64, seed=1), name="library/larger", tag="latest")


def test_a_limit_below_the_server_is_a_real_oomkill_that_deploy_names(cluster, run_on_node):
    # an install of its own: a failed upgrade is rolled back (remediateLastFailure), and the rollback
    # takes the failed pod, and the OOMKilled in its status, with it
    name = "ollama-starved"
    own = {"ollama_flux_release_name": name, "ollama_flux_namespace": name, "ollama_flux_namespace_create": True,
           "ollama_flux_pvc_mode": "role", "ollama_flux_pvc_name": f"{name}-models",
           "ollama_flux_storage_class": STORAGE_CLASS,
           # an empty claim of its own: the chart's own pull (which the kill comes before), one replica
           "ollama_flux_models_preseeded": False, "ollama_flux_thread_alignment": "off", "ollama_flux_replicas": 1}
    starved = {**PAST_THE_PREFLIGHT, **own, "ollama_flux_memory_limit": "8Mi", "ollama_flux_memory_request": "8Mi",
               "ollama_flux_timeout": "45s", "ollama_flux_install_retries": 0}
    try:
        failed = run_on_node("deploy.yml", starved)

        said = failed.said
        assert failed.returncode != 0, failed.output[-6000:]
        assert "was OOMKilled" in said, said[-6000:]
        assert "raise ollama_flux_memory_limit" in said

        diagnosed = run_on_node("diagnose.yml", {"diagnose_namespace": name, "diagnose_release_name": name,
                                                 "diagnose_pvc_name": f"{name}-models", "diagnose_endpoints": []})
        assert diagnosed.returncode != 0
        assert "RUNBOOK OOMKilled during model loading" in diagnosed.said, diagnosed.said[-4000:]
        assert "was OOMKilled" in diagnosed.said
    finally:
        cluster.delete(*HELMRELEASE, name, FLUX)
        cluster.delete("v1", "Namespace", name)


def test_a_limit_below_the_model_kills_its_runner_and_verify_names_it(cluster, run_on_node, larger_model):
    seeded = run_on_node("seed_models.yml", {"model_cache_models": [larger_model.ref]})
    assert seeded.returncode == 0, seeded.output[-6000:]
    tight = {**PAST_THE_PREFLIGHT, "ollama_flux_model": larger_model.ref, "model_cache_models": [larger_model.ref],
             "ollama_flux_memory_limit": "96Mi", "ollama_flux_memory_request": "96Mi"}

    deployed = run_on_node("deploy.yml", tight)
    assert deployed.returncode == 0, deployed.output[-6000:]  # Ready: nothing loads a model at start
    verified = run_on_node("verify.yml", tight)

    said = verified.said
    assert verified.returncode != 0
    assert "RUNBOOK OOMKilled during model loading" in said, said[-6000:]
    assert f"model runner was killed while it loaded or ran {larger_model.ref}-t2" in said
    assert "raise ollama_flux_memory_limit" in said

    # the inventory as it was: the tiny model and its limit serve again
    fixed = run_on_node("deploy.yml")
    assert fixed.returncode == 0, fixed.output[-6000:]
    assert run_on_node("verify.yml").returncode == 0
