"""The user's paths on the test cluster's real node (tests/services/real_node.py): real containers
for the seed Job, the chart's pod, the Agent Gateway and the probes, real cluster DNS and a
NetworkPolicy that is enforced.

The playbooks run with the prod inventory scaled to the node (inventory/ beside this file), from
inside the network of a controller pod in the gateway's namespace, as an in-cluster controller (an
AWX or execution-environment pod) runs them: the cluster's service names resolve and the
NetworkPolicy admits it as it admits the gateway. The model comes from a registry on the node's
address, which its pods reach; its CDN's access log shows every blob a pod fetched.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import _attached
from tests.playbook import PlaybookRun, run_playbook
from tests.services.cluster import bin_dir
from tests.services.real_node import CLUSTER_DNS, NODE_IP, NODE_SELECTOR, SERVICES_IP, TOLERATION, pod_ready
from tests.services.registry import PublishedModel, Registry

INVENTORY = Path(__file__).resolve().parent / "inventory"
NAMESPACE = "ollama-node"
RELEASE = "ollama-node"
GATEWAY_NAMESPACE = "agentgateway-system"
GATEWAY_URL = "http://agentgateway-proxy.agentgateway-system.svc.cluster.local:9080"
DIRECT_URL = f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local:11434"
CONTROLLER_POD = "ansible-controller"

# The Agent Gateway's stand-in: nginx proxying :9080 to the Ollama Service, by its DNS name,
# resolved per request (the Service may not exist yet when the gateway starts).
GATEWAY_CONF = f"""\
server {{
  listen 9080;
  resolver {CLUSTER_DNS} valid=5s;
  set $ollama {DIRECT_URL};
  location / {{
    proxy_pass $ollama;
    proxy_buffering off;
    proxy_read_timeout 600s;
  }}
}}
"""


def on_node(spec: dict) -> dict:
    """A pod spec scheduled onto the real node."""
    return {**spec, "nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION]}


def tools_pod(name: str, namespace: str, image: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
            "spec": on_node({"terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                             "containers": [{"name": "tools", "image": image, "imagePullPolicy": "IfNotPresent",
                                             "command": ["sleep", "infinity"]}]})}


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def wait_pod_ready(cluster, namespace_name: str, name: str, timeout: float = 120) -> dict:
    return cluster.wait_for(f"pod {namespace_name}/{name} Ready",
                            lambda: (pod := cluster.find("v1", "Pod", name, namespace_name)) and pod_ready(pod) and pod,
                            timeout=timeout)


@pytest.fixture(scope="session")
def node(cluster):
    assert cluster.node is not None, "the session's cluster was started without its real node"
    return cluster.node


@pytest.fixture(scope="session")
def node_registry(node, tmp_path_factory):
    """A registry on the node's address (its pods cannot reach this host's loopback), its CDN on the
    second address: Ollama in a pod pulls from it as from registry.ollama.ai."""
    yield from _attached(Registry.start(tmp_path_factory.mktemp("node-registry"), host=NODE_IP, cdn_host=SERVICES_IP))


@pytest.fixture(scope="session")
def node_model(node_registry, model_factory) -> PublishedModel:
    return node_registry.push_model(model_factory.tiny(seed=0), name="library/tiny", tag="latest")


def gateway_objects(name: str, image: str, conf: str) -> list[dict]:
    """An nginx gateway in the gateway's namespace (so the NetworkPolicy admits it), a pod on the node
    with conf in its conf.d, and its Service on 9080."""
    labels = {"app.kubernetes.io/name": name}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": GATEWAY_NAMESPACE},
         "data": {"gateway.conf": conf}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": GATEWAY_NAMESPACE},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels},
             "spec": on_node({"containers": [{
                 "name": "proxy", "image": image, "imagePullPolicy": "IfNotPresent",
                 "ports": [{"containerPort": 9080}],
                 "readinessProbe": {"tcpSocket": {"port": 9080}, "periodSeconds": 1},
                 "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/conf.d"}]}],
                 "volumes": [{"name": "conf", "configMap": {"name": name}}]})}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": GATEWAY_NAMESPACE},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 9080, "targetPort": 9080}]}},
    ]


def start_gateway(cluster, objects: list[dict]) -> str:
    """Apply gateway_objects and wait for the gateway pod: its URL by DNS name."""
    name = objects[0]["metadata"]["name"]
    cluster.apply(*objects)
    cluster.wait_for(f"{name} available", lambda: (cluster.get(
        "apps/v1", "Deployment", name, GATEWAY_NAMESPACE).get("status") or {}).get("availableReplicas"))
    return f"http://{name}.{GATEWAY_NAMESPACE}.svc.cluster.local:9080"


@pytest.fixture(scope="session")
def gateway(cluster, node) -> str:
    """agentgateway-proxy in agentgateway-system, a real pod on the node: its URL by DNS name."""
    cluster.apply(namespace(GATEWAY_NAMESPACE))
    url = start_gateway(cluster, gateway_objects("agentgateway-proxy", node.images["gateway"], GATEWAY_CONF))
    assert url == GATEWAY_URL
    return url


@pytest.fixture(scope="session")
def controller_pod(cluster, node, gateway) -> list[str]:
    """The controller's seat in the cluster: a pod in the gateway's namespace. The launcher that runs
    a host program in its network."""
    cluster.apply(tools_pod(CONTROLLER_POD, GATEWAY_NAMESPACE, node.images["tools"]))
    wait_pod_ready(cluster, GATEWAY_NAMESPACE, CONTROLLER_POD)
    return node.launcher(GATEWAY_NAMESPACE, CONTROLLER_POD)


@pytest.fixture(scope="session")
def run_on_node(cluster, node, node_model, controller_pod, work_tree_collections):
    """ansible-playbook -i tests/integration/real_node/inventory playbooks/<playbook> -e <vars> ARGS,
    run from the controller pod's network."""
    env = {**cluster.env(), "AIPLATFORM_TEST_NODE_MODEL": node_model.ref,
           "AIPLATFORM_TEST_OLLAMA_IMAGE": node.images["ollama"], "AIPLATFORM_TEST_TOOLS_IMAGE": node.images["tools"]}

    def run(playbook: str, extra_vars: dict | None = None, *args: str, timeout: float = 900) -> PlaybookRun:
        return run_playbook(work_tree_collections, playbook, str(INVENTORY), extra_vars, *args, env=env,
                            timeout=timeout, launcher=controller_pod)

    return run


def pod_exec(cluster, namespace_name: str, pod: str, command: list, timeout: float = 60) -> subprocess.CompletedProcess:
    """`kubectl exec` into a real pod: the completed process (exit code, stdout, stderr), never raising."""
    return subprocess.run([str(bin_dir() / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", "exec", "-n",
                           namespace_name, pod, "--", *command], capture_output=True, text=True, timeout=timeout)


# Four clients through the gateway, one request after another each, until told to stop: every HTTP
# status (000: no answer) on its own line.
LOAD_SCRIPT = r"""
rm -f /tmp/load-stop /tmp/load-*.codes
client() {
  while [ ! -e /tmp/load-stop ]; do
    curl -sS -m 120 -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' -d "$BODY" \
      "$URL/api/generate" 2>>/tmp/load-errors || true
  done
}
for i in 1 2 3 4; do client > /tmp/load-$i.codes & done
wait
cat /tmp/load-*.codes
"""


@contextlib.contextmanager
def gateway_load(cluster, model: str):
    """Four clients calling `model` through the gateway from the controller pod for as long as the block
    runs (it starts once they have 8 answers): the list it yields holds every request's HTTP status after."""
    body = json.dumps({"model": model, "prompt": "Say hi.", "stream": False, "options": {"num_predict": 4}})
    codes: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        load = pool.submit(pod_exec, cluster, GATEWAY_NAMESPACE, CONTROLLER_POD,
                           ["env", f"URL={GATEWAY_URL}", f"BODY={body}", "sh", "-c", LOAD_SCRIPT], 1800)
        try:
            cluster.wait_for("load started", lambda: int(pod_exec(cluster, GATEWAY_NAMESPACE, CONTROLLER_POD, [
                "sh", "-c", "cat /tmp/load-*.codes 2>/dev/null | wc -l"]).stdout.strip() or 0) >= 8)
            yield codes
        finally:
            pod_exec(cluster, GATEWAY_NAMESPACE, CONTROLLER_POD, ["touch", "/tmp/load-stop"])
            done = load.result(timeout=300)
    assert done.returncode == 0, done
    codes.extend(done.stdout.split())
