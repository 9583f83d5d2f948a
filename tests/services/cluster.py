"""A real Kubernetes control plane and real Flux controllers, as local processes.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real ones; kwok fakes the
kubelets of its nodes (it marks them Ready, scheduled pods Running/Ready and Job pods Succeeded,
without a container runtime); source-controller, helm-controller and kustomize-controller are Flux's
own. Claims bind to pre-made PersistentVolumes, and a local Helm repository (nginx) serves the real
`ollama` chart 1.53.0. Everything listens on 127.0.0.1 and lives in one work directory.

`with_real_node=True` adds a real node beside kwok's (real_node.py: kubelet, containerd, CNI,
kube-proxy, CoreDNS, NetworkPolicy enforcement; root only, one per machine). The apiserver then
listens on the node's address instead of 127.0.0.1, where the node's pods reach it, and kwok manages
only the nodes annotated as its own.

kwok runs `kubectl exec` commands on this host: an exec into any container of any pod (kubectl, the
Kubernetes client's exec stream, kubernetes.core.k8s_exec) runs the command as a process of this
machine, as the tests' user, with the tests' environment, in the work directory's `exec/`, and reports
its stdout, stderr and exit code as a kubelet would. A probe pod's `curl http://127.0.0.1:PORT/...`
thus reaches the services the tests run on loopback; NetworkPolicies do not apply to it. The mapping is
kwok's ClusterExec CLUSTER_EXEC (in its --config); kwok 0.8.0 selects its pods by name and namespace
only, so it covers every pod, whatever its labels. Every node's kubelet endpoint (InternalIP 127.0.0.1,
port `Cluster.kubelet_port`) is KubeletRelay, which passes the apiserver's calls on to kwok's server.
Stdin never ends (kwok 0.8.0 does not close the command's stdin pipe when the client's stream ends), so
an `exec -i` of a command that reads to EOF hangs; `kubectl logs` still answers "no logs found".

All binaries are built by `make setup` (tools/build_cluster.sh) into the project cache.

By hand, for debugging:  python -m tests.services.cluster up      (prints KUBECONFIG; Ctrl-C stops)
                         python -m tests.services.cluster run -- COMMAND...   (KUBECONFIG exported)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import real_node
from .kubelet_relay import KubeletRelay
from .nginx import nginx
from .process import ManagedProcess, Service, ServiceError, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FLUX_NAMESPACE = "flux-system"
# Every pod scheduled onto this node ends Failed: a bad node, for the tests' failure paths (a seed
# Job that fails, then succeeds once the node is cordoned). It starts cordoned, so nothing lands
# there unless a test uncordons it.
FAILING_NODE = "kwok-failing-node"
SERVICE_CIDR = "10.96.0.0/16"
# kwok's ClusterExec (given in its --config): `kubectl exec` into any pod runs on this host
CLUSTER_EXEC = "aiplatform-test-exec-local"

# kwok Stage template lines, in Go template syntax ({{ }} is kwok's, not Python's).
_NOW = "{{ $now | Quote }}"
_POD_ADDRESSES = ("hostIP: {{ NodeIPWith .spec.nodeName | Quote }}\n"
                  "podIP: {{ PodIPWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace"
                  " | Quote }}\n")


def _pod_stage(name: str, match: list, phase: str, container: str) -> dict:
    """A kwok Stage giving the pods it matches a not-Ready status in phase, each container with the
    status lines given: what a kubelet would report."""
    def statuses(field: str, ranged: str, lines: str) -> str:
        return (f"{field}:\n{{{{ range .spec.{ranged} }}}}\n- image: {{{{ .image | Quote }}}}\n"
                f"  name: {{{{ .name | Quote }}}}\n" + "".join(f"  {line}\n" for line in lines.splitlines())
                + "{{ end }}\n")
    template = ("{{ $now := Now }}\n"
                f"conditions:\n- lastTransitionTime: {_NOW}\n  status: \"False\"\n  type: Ready\n"
                + statuses("containerStatuses", "containers", container) + _POD_ADDRESSES + f"phase: {phase}\n")
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name},
            "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"},
                     "selector": {"matchExpressions": [
                         {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}, *match]},
                     "next": {"statusTemplate": template}}}


# Pods on FAILING_NODE end Failed (exit code 1) instead of Running or Succeeded. kwok picks among
# matching stages at random by weight, so its own pod stages leave that node alone (_kwok_stages).
FAIL_STAGE = _pod_stage(
    "aiplatform-test-pod-fail",
    [{"key": ".spec.nodeName", "operator": "In", "values": [FAILING_NODE]},
     {"key": ".status.phase", "operator": "NotIn", "values": ["Failed"]}],
    "Failed",
    f"""ready: false
restartCount: 0
started: false
state:
  terminated:
    exitCode: 1
    reason: Error
    message: failed by the test cluster's failing node
    startedAt: {_NOW}
    finishedAt: {_NOW}""")

def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aiplatform-ollama"
    return Path(os.environ.get("AIPLATFORM_OLLAMA_CACHE", default))


def bin_dir() -> Path:
    return Path(os.environ.get("CLUSTER_BIN_DIR", cache_dir() / "cluster" / "bin"))


def assets_dir() -> Path:
    return Path(os.environ.get("CLUSTER_ASSETS_DIR", cache_dir() / "cluster" / "assets"))


def chart_dir() -> Path:
    fixtures = Path(os.environ.get("AIPLATFORM_FIXTURES_DIR", PROJECT_ROOT.parent / "shared" / "fixtures"))
    return fixtures / "charts" / "ollama-1.53.0"


BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
            "source-controller", "helm-controller", "kustomize-controller")


def missing_parts(with_real_node: bool = False) -> list[str]:
    """What `make setup` must still build or fetch before a cluster can start."""
    missing = [str(bin_dir() / name) for name in BINARIES if not os.access(bin_dir() / name, os.X_OK)]
    for asset in (assets_dir() / "kwok-stages.yaml", assets_dir() / "flux-crds", chart_dir() / "Chart.yaml"):
        if not asset.exists():
            missing.append(str(asset))
    if with_real_node:
        missing += real_node.missing_parts(bin_dir(), cache_dir())
    return missing


@dataclass
class Node:
    """A kwok node with the allocatable resources the scheduler should see."""

    name: str
    cpu: str = "4"
    # the prod inventory requests 52Gi for qwen2.5:72b, and the suite leaves a release of each test
    # running: room for several on each node, as kwok's nodes cost nothing
    memory: str = "512Gi"
    labels: dict = field(default_factory=dict)
    unschedulable: bool = False

    def manifest(self) -> dict:
        resources = {"cpu": self.cpu, "memory": self.memory, "pods": "110"}
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": self.name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "type": "kwok", **self.labels},
            },
            "spec": {"unschedulable": self.unschedulable},
            "status": {"allocatable": resources, "capacity": resources},
        }


DEFAULT_NODES = (Node("kwok-node-0"), Node("kwok-node-1"), Node(FAILING_NODE, unschedulable=True))


def _kwok_stages() -> list[dict]:
    """kwok's fast node and pod stages, the pod ones sparing the pods of FAILING_NODE, plus FAIL_STAGE."""
    stages = [doc for doc in yaml.safe_load_all((assets_dir() / "kwok-stages.yaml").read_text()) if doc]
    spare = [{"key": ".spec.nodeName", "operator": "NotIn", "values": [FAILING_NODE]}]
    for stage in stages:
        if stage["spec"]["resourceRef"]["kind"] == "Pod" and stage["metadata"]["name"] != "pod-delete":
            stage["spec"].setdefault("selector", {}).setdefault("matchExpressions", []).extend(spare)
    return [*stages, FAIL_STAGE]


def _run(argv: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kwargs)


class Cluster(Service):
    """A running control plane, kwok nodes, Flux and a Helm repository. Use `Cluster.start(workdir)`."""

    def __init__(self, workdir: Path, nodes=DEFAULT_NODES, persistent_volumes: int = 12, with_real_node: bool = False):
        super().__init__()
        self.workdir = Path(workdir)
        # with a real node, the apiserver listens on the node's address: its pods reach it there
        # through the `kubernetes` Service, as they cannot reach this host's loopback
        self.node = real_node.RealNode(self, bin_dir(), cache_dir()) if with_real_node else None
        self.api_host = real_node.NODE_IP if with_real_node else "127.0.0.1"
        self.nodes = list(nodes)
        self.persistent_volumes = persistent_volumes
        self.pki = workdir / "pki"
        self.kubeconfig = workdir / "kubeconfig"
        self.exec_dir = workdir / "exec"
        self.kubelet_port = 0
        self.token = os.urandom(16).hex()
        self.api_port = free_port()
        self.api_url = f"https://{self.api_host}:{self.api_port}"
        self.helm_repo_url = ""
        self._ssl = None
        self._plurals: dict = {}

    @classmethod
    def start(cls, workdir: Path, nodes=DEFAULT_NODES, persistent_volumes: int = 12, with_real_node: bool = False):
        # before anything is built: a missing part says `make setup`, not a stack trace from half a start
        missing = missing_parts(with_real_node)
        if missing:
            raise ServiceError("the test cluster cannot start, missing: " + ", ".join(missing)
                               + " — run `make setup` (builds them into the project cache)")
        return super().start(workdir, nodes, persistent_volumes, with_real_node)

    # ---- processes -------------------------------------------------------------------------
    def _wait(self, what: str, ready, proc: ManagedProcess | None = None, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if proc is not None and proc.proc.poll() is not None:
                raise ServiceError(f"{proc.name} exited with {proc.proc.returncode} while waiting for {what}:\n"
                                   f"{proc.log_tail()}")
            try:
                result = ready()
                if result:
                    return result
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"; the last one is reported
                last = exc
            time.sleep(0.2)
        tail = f"\n{proc.log_tail()}" if proc else ""
        raise ServiceError(f"{what} not ready within {timeout}s (last error: {last}){tail}")

    def _health(self, url: str, token: str = "") -> bool:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=2, context=self._ssl_context(url)) as response:
            return response.status == 200

    def _ssl_context(self, url: str):
        if not url.startswith("https:"):
            return None
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        return self._ssl

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if self.node:
            self.node.claim_address(self._stack)
        self._make_pki()
        self._start_etcd()
        self._start_apiserver()
        self._write_kubeconfig()
        self._start_control_loops()
        self._start_kwok()
        self._install_flux_crds()
        self._start_flux()
        self._start_helm_repository()
        if self.node:
            self.node.start(self._stack)
        self.ready_seconds = time.monotonic() - started

    def _make_pki(self) -> None:
        p = self.pki
        p.mkdir(exist_ok=True)
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-cluster-ca",
              "-keyout", p / "ca.key", "-out", p / "ca.crt"])
        (p / "san.cnf").write_text(
            "[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=IP:127.0.0.1,IP:10.96.0.1,"
            f"IP:{real_node.NODE_IP},DNS:localhost,"
            "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
            "DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n")
        _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
              "-keyout", p / "apiserver.key", "-out", p / "apiserver.csr"])
        _run(["openssl", "x509", "-req", "-in", p / "apiserver.csr", "-CA", p / "ca.crt", "-CAkey", p / "ca.key",
              "-CAcreateserial", "-days", "2", "-extfile", p / "san.cnf", "-extensions", "ext",
              "-out", p / "apiserver.crt"])
        _run(["openssl", "genrsa", "-out", p / "sa.key", "2048"])
        _run(["openssl", "rsa", "-in", p / "sa.key", "-pubout", "-out", p / "sa.pub"])
        # the kwok nodes' kubelet endpoint (KubeletRelay) serves this; the apiserver checks it against
        # the cluster CA
        self._signed_certificate("kubelet", "/CN=kwok-kubelet",
                                 "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
        (p / "tokens.csv").write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        if self.node:
            self._make_node_pki()

    def _make_node_pki(self) -> None:
        """The real node's credentials: its kubelet's client (a node identity the Node authorizer
        knows) and serving certificates, and the apiserver's client certificate for the kubelet."""
        self._signed_certificate("kubelet-client", f"/O=system:nodes/CN=system:node:{real_node.NODE_NAME}",
                                 "extendedKeyUsage=clientAuth")
        self._signed_certificate("kubelet-serving", f"/CN={real_node.NODE_NAME}",
                                 f"subjectAltName=IP:{real_node.NODE_IP}\nextendedKeyUsage=serverAuth")
        self._signed_certificate("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client",
                                 "extendedKeyUsage=clientAuth")

    def _signed_certificate(self, name: str, subject: str, extensions: str) -> None:
        """pki/<name>.crt and .key, signed by the cluster CA, with the X.509 extensions given. An EC
        key, because generating an RSA one costs a noticeable share of startup."""
        p = self.pki
        (p / f"{name}.cnf").write_text(f"[req]\ndistinguished_name=dn\n[dn]\n[ext]\n{extensions}\n")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-subj", subject, "-CA", p / "ca.crt", "-CAkey", p / "ca.key", "-days", "2",
              "-config", p / f"{name}.cnf", "-extensions", "ext", "-keyout", p / f"{name}.key",
              "-out", p / f"{name}.crt"])

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        proc = self._spawn("etcd", [
            bin_dir() / "etcd", "--name", "test", "--data-dir", self.workdir / "etcd",
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"test=http://127.0.0.1:{peer}", "--unsafe-no-fsync",
            "--log-level", "warn"])
        self._wait("etcd", lambda: self._health(self.etcd_url + "/health"), proc)

    def _start_apiserver(self) -> None:
        p = self.pki
        node_flags = [f"--advertise-address={self.api_host}", "--authorization-mode=Node,RBAC",
                      f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
                      f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}"] if self.node else [
                      "--authorization-mode=RBAC"]
        proc = self._spawn("kube-apiserver", [
            bin_dir() / "kube-apiserver", f"--etcd-servers={self.etcd_url}", f"--bind-address={self.api_host}",
            *node_flags,
            f"--secure-port={self.api_port}", f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}", f"--client-ca-file={p / 'ca.crt'}",
            f"--token-auth-file={p / 'tokens.csv'}", f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true", "--profiling=false",
            # kubelet calls (exec, logs) go to kwok's server: the node's InternalIP and kubelet port
            f"--kubelet-certificate-authority={p / 'ca.crt'}", "--kubelet-preferred-address-types=InternalIP",
            "-v=1"])
        self._wait("kube-apiserver /readyz", lambda: self._health(self.api_url + "/readyz", self.token), proc,
                   timeout=90)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.api_url,
                                                      "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def _start_control_loops(self) -> None:
        p, kc = self.pki, self.kubeconfig
        self._spawn("kube-controller-manager", [
            bin_dir() / "kube-controller-manager", f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            "--leader-elect=false", "--controllers=*", f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}", "--cluster-cidr=10.244.0.0/16",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--use-service-account-credentials=false",
            # its default, /usr/libexec/kubernetes/..., is a host path it would create and leave behind
            f"--flex-volume-plugin-dir={self.workdir / 'flexvolume'}", "-v=1"])
        self._spawn("kube-scheduler", [
            bin_dir() / "kube-scheduler", f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            "--leader-elect=false", "-v=1"])

    def _start_kwok(self) -> None:
        config = self.workdir / "kwok.yaml"
        config.write_text(yaml.safe_dump_all([*_kwok_stages(), self._cluster_exec()]))
        self.exec_dir.mkdir(exist_ok=True)
        # One kwok process serves the kubelet API of every node: each node's InternalIP is --node-ip
        # and its kubelet port --node-port, where KubeletRelay listens and passes on to kwok's server.
        self.kubelet_port, kwok_port = free_port(), free_port()
        relay = KubeletRelay(self.kubelet_port, kwok_port, self.pki / "kubelet.crt", self.pki / "kubelet.key")
        threading.Thread(target=relay.serve_forever, name="kubelet-relay", daemon=True).start()
        self._stack.callback(relay.server_close)
        self._stack.callback(relay.shutdown)
        proc = self._spawn("kwok", [
            bin_dir() / "kwok", f"--kubeconfig={self.kubeconfig}", f"--config={config}",
            # its own nodes only: a real node is its kubelet's
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{kwok_port}",
            "--node-ip=127.0.0.1", f"--node-port={self.kubelet_port}", "--cidr=10.0.0.1/24"])
        self.apply(*(node.manifest() for node in self.nodes))

        def nodes_ready():
            ready = 0
            for node in self.get("v1", "Node")["items"]:
                status = node.get("status", {})
                port = status.get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port")
                ready += port == self.kubelet_port and any(
                    c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
            return ready == len(self.nodes)

        self._wait("kwok nodes Ready", nodes_ready, proc, timeout=60)
        self._wait("kwok kubelet API", lambda: self._health(f"https://127.0.0.1:{self.kubelet_port}/healthz"), proc)
        # claims without a storage class bind to these; a claim naming a missing class stays Pending
        self.apply(*(self._persistent_volume(i) for i in range(self.persistent_volumes)))

    def _cluster_exec(self) -> dict:
        """kwok runs what `kubectl exec` asks of any container of any pod as a command on this host,
        in exec_dir: kwok 0.8.0 selects pods by name and namespace only, so this covers them all."""
        return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterExec", "metadata": {"name": CLUSTER_EXEC},
                "spec": {"execs": [{"local": {"workDir": str(self.exec_dir)}}]}}

    def _persistent_volume(self, index: int) -> dict:
        return {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"test-pv-{index:02d}", "labels": {"aiplatform.test/pv": "static"}},
            "spec": {"capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                     "persistentVolumeReclaimPolicy": "Retain",
                     "hostPath": {"path": str(self.workdir / "volumes" / f"pv-{index:02d}")}},
        }

    def _install_flux_crds(self) -> None:
        crds = []
        for path in sorted((assets_dir() / "flux-crds").glob("*.yaml")):
            crds.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
        self.apply(*crds)
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": FLUX_NAMESPACE}})

        def established():
            for crd in crds:
                obj = self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"])
                conditions = obj.get("status", {}).get("conditions", [])
                if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    return False
            return True

        self._wait("Flux CRDs Established", established, timeout=60)

    def _start_flux(self) -> None:
        env = {"KUBECONFIG": str(self.kubeconfig), "RUNTIME_NAMESPACE": FLUX_NAMESPACE}
        storage_port = free_port()
        (self.workdir / "artifacts").mkdir(exist_ok=True)
        common = ["--watch-all-namespaces=true", "--log-level=info", "--events-addr="]
        controllers = {
            "source-controller": [f"--storage-path={self.workdir / 'artifacts'}",
                                  f"--storage-addr=127.0.0.1:{storage_port}",
                                  f"--storage-adv-addr=127.0.0.1:{storage_port}"],
            "helm-controller": [],
            # dependsOn is re-checked every 30s by default: the tests' seed-then-deploy would idle
            "kustomize-controller": ["--requeue-dependency=5s"],
        }
        for name, extra in controllers.items():
            health = free_port()
            proc = self._spawn(name, [bin_dir() / name, *common, f"--metrics-addr=127.0.0.1:{free_port()}",
                                      f"--health-addr=127.0.0.1:{health}", *extra], env=env)
            self._wait(f"{name} /readyz", lambda h=health: self._health(f"http://127.0.0.1:{h}/readyz"), proc)

    def _start_helm_repository(self) -> None:
        repo = self.workdir / "helm-repo"
        repo.mkdir(exist_ok=True)
        port = free_port()
        self.helm_repo_url = f"http://127.0.0.1:{port}/"
        helm = os.environ.get("HELM_BIN") or str(cache_dir() / "bin" / "helm")
        helm_env = {**os.environ, "HELM_CACHE_HOME": str(self.workdir / "helm"),
                    "HELM_CONFIG_HOME": str(self.workdir / "helm"), "HELM_DATA_HOME": str(self.workdir / "helm")}
        _run([helm, "package", chart_dir(), "--destination", repo], env=helm_env)
        _run([helm, "repo", "index", repo, "--url", self.helm_repo_url], env=helm_env)
        server = f"    listen 127.0.0.1:{port};\n    location / {{ root {repo}; }}"
        self._keep(self._stack.enter_context(nginx("helm-repo", self.workdir / "helm-nginx", server,
                                                   ready_url=self.helm_repo_url + "index.yaml")))

    # ---- API access --------------------------------------------------------------------------
    def env(self) -> dict:
        """What a command needs to reach this cluster and its Helm repository."""
        return {"KUBECONFIG": str(self.kubeconfig), "K8S_AUTH_KUBECONFIG": str(self.kubeconfig),
                "AIPLATFORM_TEST_HELM_REPO_URL": self.helm_repo_url}

    @staticmethod
    def _api_prefix(api_version: str) -> str:
        return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"

    def _path(self, api_version: str, kind: str, namespace: str | None, name: str | None) -> str:
        plural = self._plural(api_version, kind)
        path = self._api_prefix(api_version) + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
        return path + (f"/{name}" if name else "")

    def _plural(self, api_version: str, kind: str) -> str:
        if (api_version, kind) not in self._plurals:
            for resource in self.request("GET", self._api_prefix(api_version))["resources"]:
                if "/" not in resource["name"]:  # subresources such as pods/log
                    self._plurals[(api_version, resource["kind"])] = resource["name"]
        return self._plurals[(api_version, kind)]

    def request(self, method: str, path: str, body=None, content_type: str = "application/json"):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.api_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30, context=self._ssl_context(self.api_url)) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise ServiceError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')[:2000]}") from None

    def log(self, namespace: str, pod: str, container: str) -> str:
        """A container's log, as kubectl logs reads it (through the kubelet)."""
        request = urllib.request.Request(
            f"{self.api_url}/api/v1/namespaces/{namespace}/pods/{pod}/log?container={container}",
            headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30, context=self._ssl_context(self.api_url)) as response:
            return response.read().decode(errors="replace")

    def apply(self, *objects: dict, field_manager: str = "aiplatform-test") -> None:
        """Server-side apply, as kubectl apply --server-side --force-conflicts does."""
        for obj in objects:
            meta = obj["metadata"]
            path = self._path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
            self.request("PATCH", f"{path}?fieldManager={field_manager}&force=true", json.dumps(obj).encode(),
                         "application/apply-patch+yaml")

    def get(self, api_version: str, kind: str, name: str | None = None, namespace: str | None = None,
            label_selector: str = "") -> dict:
        path = self._path(api_version, kind, namespace, name)
        query = f"?labelSelector={urllib.request.quote(label_selector)}" if label_selector else ""
        return self.request("GET", path + query)

    def find(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """The object, or None when it does not exist."""
        try:
            return self.get(api_version, kind, name, namespace)
        except ServiceError as exc:
            if ": 404 " in str(exc):
                return None
            raise

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        with contextlib.suppress(ServiceError):
            self.request("DELETE", self._path(api_version, kind, namespace, name)
                         + "?propagationPolicy=Background")

    def exec(self, namespace: str, pod: str, command: list) -> str:
        """`kubectl exec` into the pod's first container: the command's stdout. A non-zero exit raises
        subprocess.CalledProcessError carrying the command's exit code, stdout and stderr."""
        return _run([bin_dir() / "kubectl", f"--kubeconfig={self.kubeconfig}", "exec", "-n", namespace, pod,
                     "--", *command]).stdout

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        self.request("PATCH", f"/api/v1/nodes/{node}", {"spec": {"unschedulable": unschedulable}},
                     "application/merge-patch+json")

    def wait_for(self, what: str, predicate, timeout: float = 120.0):
        """Poll predicate() until it returns something true; fail with the components' logs."""
        try:
            return self._wait(what, predicate, timeout=timeout)
        except ServiceError as exc:
            raise ServiceError(f"{exc}\n{self.logs(20)}") from None


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Start the test cluster by hand (tests/services/cluster.py).")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start it, print KUBECONFIG, run until Ctrl-C")
    run = sub.add_parser("run", help="start it, run COMMAND with KUBECONFIG set, stop it")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    for command in (sub.choices["up"], run):
        command.add_argument("--real-node", action="store_true",
                             help="add the real node (kubelet, containerd, ...; needs root) beside the kwok nodes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aiplatform-cluster-") as tmp, \
            Cluster.start(Path(tmp), with_real_node=args.real_node) as cluster:
        print(f"==> cluster ready in {cluster.ready_seconds:.1f}s; Helm repository {cluster.helm_repo_url}",
              flush=True)
        if args.command == "up":
            print(f"export KUBECONFIG={cluster.kubeconfig}\nexport "
                  f"AIPLATFORM_TEST_HELM_REPO_URL={cluster.helm_repo_url}\n(Ctrl-C stops it)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
            return 0
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not command:
            parser.error("run needs a COMMAND")
        code = subprocess.call(command, env={**os.environ, **cluster.env()})
        if code:
            print(cluster.logs(), file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
