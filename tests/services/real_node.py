"""A real Kubernetes node in the test cluster: kubelet, containerd with runc, a CNI bridge, kube-proxy
(nftables), CoreDNS serving cluster.local and kube-network-policies enforcing NetworkPolicies.

It runs the chart's pod, the seed Job, the gateway and the probe pods as real containers, with
images built on this machine (tools/node_images.py) and imported into its containerd, as an
air-gapped site would. kwok keeps the nodes it fakes for the failure paths it is good at; this node
carries the taint TAINT, so only the pods that ask for it (TOLERATION, NODE_SELECTOR) land here.

Everything the node uses lives in its work directory (containerd's root and state, the kubelet's
root, the pod logs, the CNI IP allocations), and its addresses on links it creates and removes:
NODE_IP on a veth of its own (the kubelet refuses a loopback node IP, this kernel has no dummy
driver) and the pods' subnet on its own bridge; nothing is routed off the machine and CoreDNS
forwards nowhere. It changes host network state while it runs (links, nftables, the kubelet's
iptables chains, ip_forward) and restores what it found when it stops: `RealNode.restore_host`
compares the host with what host_state.HostState captured before the node started, and raises on a
difference. A node whose owner is killed before it stops (a CI job's timeout, a session that ends
mid-run) cannot restore anything itself: it leaves OWNER_RECORD, the state it found and where it
lived, and the next node to start restores the host from it (`recover_abandoned_node`).

Two things this machine kind needs, and a real node elsewhere would not:
- the kernel lacks CAP_SYS_RESOURCE in the bounding set, so no process may lower its oom_score_adj:
  containerd runs with restrict_oom_score_adj (pods keep the score they inherit);
- the kubelet sets four global kernel tunables at start (vm.overcommit_memory, kernel.panic, ...):
  it runs in a mount namespace of its own in which those /proc/sys files read as the values it wants,
  so it has nothing to write; its kubelet root directory is a shared mount, so the volumes it mounts
  there reach containerd.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from .host_state import FIXED_PATHS, HostState, cgroups, iptables_chains, links, mounts, sysctls
from .process import ServiceError, free_port

NODE_NAME = "aiplatform-real-node"
NODE_IP = "10.250.0.1"
# a second address of the node's link, for services its pods must reach under another host name than
# NODE_IP: the registry's blob CDN (Ollama follows a blob redirect only to another host)
SERVICES_IP = "10.250.0.2"
NODE_LINK = "aipo-node"
BRIDGE = "aipo-cni0"
CLUSTER_CIDR = "10.244.0.0/16"
POD_SUBNET = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
CLUSTER_DNS = "10.96.0.10"
TAINT = {"key": "aiplatform.test/real-node", "value": "true", "effect": "NoSchedule"}
TOLERATION = {"key": TAINT["key"], "operator": "Equal", "value": "true", "effect": "NoSchedule"}
NODE_SELECTOR = {"kubernetes.io/hostname": NODE_NAME}
# local PersistentVolumes on directories of the node's work directory, bound to claims of this class
STORAGE_CLASS = "aiplatform-real-node-local"
LOCAL_VOLUMES = 4
# the kubelet's desired kernel tunables (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables)
KUBELET_TUNABLES = {"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10",
                    "kernel/panic_on_oops": "1", "kernel/keys/root_maxkeys": "1000000",
                    "kernel/keys/root_maxbytes": "25000000"}
# nft tables the node's components create (the iptables ones by the kubelet's chains)
NODE_NFT_TABLES = {"kube-proxy", "kube-network-policies", "filter", "nat", "mangle", "raw", "security"}
NODE_BINARIES = ("kubelet", "kube-proxy", "containerd", "ctr", "containerd-shim-runc-v2", "cni/bridge",
                 "cni/host-local", "cni/loopback", "coredns", "kube-network-policies", "pause", "busybox")
IMAGES = ("ollama", "tools", "gateway", "coredns", "kube-network-policies", "pause")
RUNC = "/usr/sbin/runc"
# who runs the node, what the host was before it started, where the node lives: written before the
# node changes anything, removed once the host is restored
OWNER_RECORD = Path(tempfile.gettempdir()) / "aipo-real-node.json"
# set in the owner's environment before the cluster starts anything: every process it starts (the
# control plane, Flux, nginx, the node's) carries it, and a recovery finds them by it
OWNER_ENV = "AIPLATFORM_REAL_NODE_OWNER"


def images_dir(cache: Path) -> Path:
    return Path(os.environ.get("CLUSTER_IMAGES_DIR", cache / "cluster" / "images"))


def missing_parts(bin_dir: Path, cache: Path) -> list[str]:
    """What `make setup` must still build before the real node can start."""
    missing = [str(bin_dir / name) for name in NODE_BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if not os.access(RUNC, os.X_OK):
        missing.append(RUNC)
    index = images_dir(cache) / "images.json"
    names = json.loads(index.read_text()) if index.exists() else {}
    missing += [str(images_dir(cache) / f"{key}.tar") for key in IMAGES
                if key not in names or not (images_dir(cache) / f"{key}.tar").exists()]
    if os.geteuid() != 0:
        missing.append("root (the real node runs a kubelet and containerd: run the tests as root)")
    return missing


def image_names(cache: Path) -> dict[str, str]:
    """images.json's key -> the image name the node's containerd knows it by."""
    return {key: entry["name"] for key, entry in json.loads((images_dir(cache) / "images.json").read_text()).items()}


def _run(argv: list, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=check, capture_output=True, text=True, **kwargs)


class RealNode:
    """One real node of a tests.services.cluster.Cluster; the cluster drives its start and stop."""

    def __init__(self, cluster, bin_dir: Path, cache: Path):
        self.cluster = cluster
        self.bin = bin_dir
        self.cache = cache
        self.workdir = cluster.workdir / "node"
        self.images = image_names(cache)
        # containerd's sockets go to a short directory of their own (claim_address): a unix socket
        # path has at most 104 bytes, fewer than a test's work directory may take
        self.socket_dir: Path | None = None
        self.socket = Path()
        self.before: HostState | None = None
        self.leftovers: list[str] = []
        # containerd's start to the node's system pods Ready; the kubelet's start to its Node Ready
        self.ready_seconds = 0.0
        self.kubelet_ready_seconds = 0.0

    @classmethod
    def abandoned(cls, record: dict) -> RealNode:
        """The node an OWNER_RECORD describes, with what its stop needs: no cluster, nothing to start."""
        node = cls.__new__(cls)
        node.workdir, node.socket_dir = Path(record["workdir"]), Path(record["socket_dir"])
        node.socket = node.socket_dir / "containerd.sock"
        node.before = HostState.from_json(record["before"])
        node.leftovers = []
        return node

    # ---- host network -------------------------------------------------------------------------
    def claim_address(self, stack: contextlib.ExitStack) -> None:
        """Capture the host, then put NODE_IP on a veth of the node's own; the restore runs last."""
        recover_abandoned_node()
        self.before = HostState.capture()
        if NODE_LINK in self.before.links or BRIDGE in self.before.links:
            raise ServiceError(f"the host already has a link {NODE_LINK} or {BRIDGE}, and no record of the node "
                               f"that made it ({OWNER_RECORD}): remove them (ip link del) and what else that node "
                               "left (tests/services/real_node.py, restore_host, lists it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket_dir = Path(tempfile.mkdtemp(prefix="aipo-"))
        self.socket = self.socket_dir / "containerd.sock"
        _write_owner_record(self)
        stack.callback(self.restore_host)
        _run(["ip", "link", "add", NODE_LINK, "type", "veth", "peer", "name", f"{NODE_LINK}-p"])
        _run(["ip", "link", "set", NODE_LINK, "up"])
        _run(["ip", "link", "set", f"{NODE_LINK}-p", "up"])
        for address in (NODE_IP, SERVICES_IP):
            _run(["ip", "addr", "add", f"{address}/32", "dev", NODE_LINK])

    # ---- start --------------------------------------------------------------------------------
    def start(self, stack: contextlib.ExitStack) -> None:
        started = time.monotonic()
        self._write_configs()
        self._start_containerd(stack)
        kubelet_started = time.monotonic()
        self._start_kubelet()
        self.cluster.wait_for(f"node {NODE_NAME} Ready", self._node_ready, timeout=90)
        self.kubelet_ready_seconds = time.monotonic() - kubelet_started
        self.cluster._spawn("kube-proxy", [self.bin / "kube-proxy", f"--config={self.workdir / 'kube-proxy.yaml'}",
                                           "-v=1"])
        self.cluster.apply(*network_policy_enforcer(self.images["kube-network-policies"]),
                           *cluster_dns(self.images["coredns"]), *self._local_volumes())
        self.cluster.wait_for("kube-network-policies and CoreDNS Ready", self._system_pods_ready, timeout=120)
        self.ready_seconds = time.monotonic() - started

    def _write_configs(self) -> None:
        w, pki = self.workdir, self.cluster.pki
        for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "volume-plugins", "sysctl"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        (w / "containerd.toml").write_text(CONTAINERD_TOML.format(
            root=w / "containerd/root", state=w / "containerd/state", socket=self.socket, opt=w / "containerd/opt",
            pause=self.images["pause"], runc=RUNC, runc_root=w / "containerd/runc", cni_bin=self.bin / "cni",
            cni_conf=w / "cni/net.d"))
        (w / "cni/net.d/10-aiplatform-test.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "aiplatform-test", "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": str(w / "cni/ipam"),
                          "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "loopback"}]}))
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "current-context": "node",
            "clusters": [{"name": "test", "cluster": {"server": self.cluster.api_url,
                                                      "certificate-authority": str(pki / "ca.crt")}}],
            "users": [{"name": "node", "user": {"client-certificate": str(pki / "kubelet-client.crt"),
                                                "client-key": str(pki / "kubelet-client.key")}}],
            "contexts": [{"name": "node", "context": {"cluster": "test", "user": "node"}}]}
        (w / "kubelet.kubeconfig").write_text(yaml.safe_dump(kubeconfig))
        (w / "kubelet.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "failCgroupV1": False, "cgroupDriver": "cgroupfs", "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": NODE_IP, "port": 10250, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": free_port(),
            "tlsCertFile": str(pki / "kubelet-serving.crt"), "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "clusterDomain": "cluster.local", "clusterDNS": [CLUSTER_DNS],
            # no upstream resolver: pods with dnsPolicy Default resolve nothing, as CoreDNS forwards nowhere
            "resolvConf": "",
            "registerWithTaints": [TAINT],
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                             "nodefs.inodesFree": "1%"},
            # the imported images can be pulled from nowhere: never collect them
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False, "podLogsDir": str(w / "pod-logs"),
            "volumePluginDir": str(w / "volume-plugins"), "maxPods": 110,
        }))
        (w / "kube-proxy.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "mode": "nftables", "clientConnection": {"kubeconfig": str(self.cluster.kubeconfig)},
            "hostnameOverride": NODE_NAME, "clusterCIDR": CLUSTER_CIDR, "bindAddress": NODE_IP,
            "nodePortAddresses": [f"{NODE_IP}/32"],
            "healthzBindAddress": f"127.0.0.1:{free_port()}", "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # zero leaves the host's conntrack sysctls as they are
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }))

    def _start_containerd(self, stack: contextlib.ExitStack) -> None:
        # runs after containerd has stopped: shims it leaves, and every mount under the work directory
        stack.callback(self._kill_shims_and_unmount)
        proc = self.cluster._spawn(
            "containerd", [self.bin / "containerd", f"--config={self.workdir / 'containerd.toml'}"],
            env={"PATH": f"{self.bin}:{os.environ.get('PATH', '')}"})
        stack.callback(self._delete_containers)  # runs before containerd stops, after the kubelet has
        self.cluster._wait("containerd", lambda: self._ctr("version").returncode == 0, proc, timeout=60)
        for key in IMAGES:
            result = self._ctr("images", "import", images_dir(self.cache) / f"{key}.tar")
            if result.returncode:
                raise ServiceError(f"importing {key}.tar into containerd failed: {result.stderr[-2000:]}")

    def _ctr(self, *args) -> subprocess.CompletedProcess:
        return _run([self.bin / "ctr", "--address", self.socket, "--namespace", "k8s.io", *args], check=False,
                    timeout=120)

    def _start_kubelet(self) -> None:
        root = self.workdir / "kubelet"
        # a shared mount: the volumes the kubelet mounts below it, in its own mount namespace, reach containerd
        _run(["mount", "--bind", root, root])
        _run(["mount", "--make-shared", root])
        masks = []
        for key, wanted in KUBELET_TUNABLES.items():
            if Path("/proc/sys", key).read_text().strip() != wanted:
                mask = self.workdir / "sysctl" / key.replace("/", ".")
                mask.write_text(wanted + "\n")
                masks += [mask, Path("/proc/sys", key)]
        # mount each (mask, /proc/sys file) pair given before "--", then become the kubelet
        script = ('while [ "$#" -gt 0 ] && [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; '
                  'shift; exec "$@"')
        self.cluster._spawn("kubelet", [
            "unshare", "--mount", "--propagation", "unchanged", "--", "sh", "-c", script, "kubelet-ns", *masks, "--",
            self.bin / "kubelet", f"--config={self.workdir / 'kubelet.yaml'}",
            f"--kubeconfig={self.workdir / 'kubelet.kubeconfig'}", f"--root-dir={root}",
            f"--cert-dir={root / 'pki'}", f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}",
            "--node-labels=aiplatform.test/node=real", "-v=1"])

    def _local_volumes(self) -> list[dict]:
        volumes = [{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": STORAGE_CLASS},
                    "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate",
                    "reclaimPolicy": "Retain"}]
        for index in range(LOCAL_VOLUMES):
            path = self.workdir / "volumes" / f"pv-{index}"
            path.mkdir(parents=True, exist_ok=True)
            volumes.append({
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"real-node-pv-{index}"},
                "spec": {"capacity": {"storage": "20Gi"}, "accessModes": ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Retain", "storageClassName": STORAGE_CLASS,
                         "local": {"path": str(path)},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE_NAME]}]}]}}}})
        return volumes

    def volume_path(self, claim: dict) -> Path:
        """The host directory of the local volume a bound claim holds."""
        volume = self.cluster.get("v1", "PersistentVolume", claim["spec"]["volumeName"])
        return Path(volume["spec"]["local"]["path"])

    def container_pid(self, namespace: str, pod: str) -> int:
        """The host PID of the pod's first container."""
        status = self.cluster.get("v1", "Pod", pod, namespace)["status"]
        container = status["containerStatuses"][0]["containerID"].split("://", 1)[1]
        for line in self._ctr("tasks", "ls").stdout.splitlines()[1:]:
            task, pid, *_ = line.split()
            if task == container:
                return int(pid)
        raise ServiceError(f"no running task for {namespace}/{pod} (container {container})")

    def launcher(self, namespace: str, pod: str) -> list[str]:
        """A command prefix that runs a host program in the pod's network, with the cluster's DNS as
        its resolver: the way a controller running inside the cluster (an AWX or execution-environment
        pod) reaches the cluster's service names, and the way the NetworkPolicy sees it: as that pod."""
        resolv = self.workdir / f"resolv-{namespace}.conf"
        resolv.write_text(f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
                          f"nameserver {CLUSTER_DNS}\noptions ndots:5\n")
        return ["nsenter", f"--net=/proc/{self.container_pid(namespace, pod)}/ns/net", "--",
                "unshare", "--mount", "--", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv)]

    def _node_ready(self) -> bool:
        node = self.cluster.find("v1", "Node", NODE_NAME)
        return bool(node) and any(c["type"] == "Ready" and c["status"] == "True"
                                  for c in node.get("status", {}).get("conditions", []))

    def _system_pods_ready(self) -> bool:
        pods = self.cluster.get("v1", "Pod", namespace="kube-system")["items"]
        ready = {pod["metadata"].get("labels", {}).get("k8s-app") for pod in pods if pod_ready(pod)}
        return {"kube-network-policies", "kube-dns"} <= ready

    # ---- stop ---------------------------------------------------------------------------------
    def _delete_containers(self) -> None:
        """Kill and delete every container the kubelet left (it has stopped by now)."""
        for container in self._ctr("containers", "ls", "-q").stdout.split():
            self._ctr("tasks", "delete", "--force", container)
            self._ctr("containers", "delete", container)

    def _kill_shims_and_unmount(self) -> None:
        address = str(self.socket)
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if cmdline[0].endswith(b"containerd-shim-runc-v2") and address.encode() in cmdline:
                    os.kill(int(pid), 9)
        mine = str(self.workdir) + "/"
        for _ in range(3):
            left = sorted({m for m in mounts() if m.startswith(mine) or m == str(self.workdir)}, key=len, reverse=True)
            if not left:
                break
            for mount in left:
                if _run(["umount", mount], check=False).returncode:
                    _run(["umount", "-l", mount], check=False)

    def restore_host(self) -> None:
        """Remove what the node added to the host and set back what it changed; what still differs
        from the state captured before the node started is kept in self.leftovers and raised."""
        before = self.before
        # whatever still runs in the cgroups the node made (a container whose shim was killed before
        # containerd could delete it, after an interrupt): its pods' network namespaces live as long as it
        self._kill_cgroup_members(before)
        after = HostState.capture()
        for link in (BRIDGE, NODE_LINK):
            if link in after.links:
                _run(["ip", "link", "del", link], check=False)
        for line in after.nft_tables - before.nft_tables:
            family, name = line.split()[1:3]
            if name in NODE_NFT_TABLES:
                _run(["nft", "delete", "table", family, name], check=False)
        self._remove_kube_chains(before)
        for key, value in before.changed_sysctls(sysctls()).items():
            _run(["sysctl", "-qw", f"{key}={value}"], check=False)
        for path in set(FIXED_PATHS) - before.paths:
            if os.path.lexists(path):
                shutil.rmtree(path, ignore_errors=True)
        for cgroup in sorted(after.cgroups - before.cgroups):
            _remove_cgroup(Path("/sys/fs/cgroup", cgroup))
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        self.leftovers = before.differences(HostState.capture())
        if self.leftovers:
            raise ServiceError("the real node left host state behind:\n  " + "\n  ".join(self.leftovers))
        OWNER_RECORD.unlink(missing_ok=True)

    @staticmethod
    def _kill_cgroup_members(before: HostState) -> None:
        added = cgroups() - before.cgroups

        def members() -> set:
            pids = set()
            for cgroup in added:
                for procs in Path("/sys/fs/cgroup", cgroup).rglob("cgroup.procs"):
                    with contextlib.suppress(OSError):
                        pids.update(int(pid) for pid in procs.read_text().split())
            return pids

        deadline = time.monotonic() + 10
        _sigkill_until_gone(members, os.kill, deadline)
        # a pod's veth goes with its network namespace, once the last process in it is gone
        while any(link.startswith("veth") for link in links() - before.links) and time.monotonic() < deadline:
            time.sleep(0.2)

    @staticmethod
    def _remove_kube_chains(before: HostState) -> None:
        """The kubelet's KUBE-* iptables chains and the jumps to them, where the table stays."""
        now = iptables_chains() - before.iptables
        for family, tool in (("ipv4", "iptables"), ("ipv6", "ip6tables")):
            for entry in sorted(e for e in now if e.startswith(f"{family}/") and "/rule " in e):
                _, table, rule = entry.split("/", 2)
                _run([tool, "-t", table, "-D", *rule.removeprefix("rule -A ").split()], check=False)
            for entry in sorted(e for e in now if e.startswith(f"{family}/") and "/chain " in e):
                _, table, chain = entry.split("/", 2)
                _run([tool, "-t", table, "-F", chain.removeprefix("chain ")], check=False)
                _run([tool, "-t", table, "-X", chain.removeprefix("chain ")], check=False)


def _process_start(pid: int) -> str | None:
    """The start time of a live process (/proc/<pid>/stat field 22), which a reused PID does not share."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_mark(record: dict) -> str:
    """The OWNER_ENV entry every process of the record's owner carries."""
    return f"{OWNER_ENV}={record['pid']}:{record['started']}"


def _write_owner_record(node: RealNode) -> None:
    record = {"pid": os.getpid(), "started": _process_start(os.getpid()), "workdir": str(node.workdir),
              "cluster_workdir": str(node.cluster.workdir), "socket_dir": str(node.socket_dir),
              "before": node.before.to_json()}
    name, _, value = _owner_mark(record).partition("=")
    os.environ[name] = value
    partial = OWNER_RECORD.with_suffix(".partial")
    partial.write_text(json.dumps(record))
    partial.replace(OWNER_RECORD)


def recover_abandoned_node() -> bool:
    """Restore the host a node left when its owner was killed; False when there was none.

    Its owner's children outlive it (each runs in a session of its own): the process group of every
    process that carries the owner's OWNER_ENV, or whose command line names the node's cluster
    directory or containerd's socket directory, is killed first, then the node's stop runs as if its
    owner had run it. Raises when the owner still runs: two real nodes cannot share the host's links."""
    try:
        record = json.loads(OWNER_RECORD.read_text())
    except FileNotFoundError:
        return False
    if _process_start(record["pid"]) == record["started"]:
        raise ServiceError(f"another test cluster with a real node is running (pid {record['pid']}, "
                           f"{record['workdir']}): wait for it to stop, or stop it, then run again")
    _kill_abandoned_processes(_owner_mark(record), record["cluster_workdir"], record["socket_dir"])
    node = RealNode.abandoned(record)
    node._kill_shims_and_unmount()
    try:
        node.restore_host()
    except ServiceError as exc:
        raise ServiceError(f"restoring the host a killed real node left ({OWNER_RECORD}): {exc}") from None
    return True


def _kill_abandoned_processes(marker: str, *paths: str) -> None:
    """SIGKILL the process group of every process whose environment holds marker or whose command line
    names one of paths or a path below it (not a sibling that only starts alike: cluster1 is not
    cluster10), and wait until they are gone. Whole groups: an nginx worker renames itself and keeps no
    environment of its own to read, but it stays in its master's group."""
    needles = [path.rstrip("/").encode() + end for path in paths for end in (b"/", b"\0")]
    own_group = os.getpgrp()

    def abandoned() -> set[int]:
        groups = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if marker.encode() in environ or any(needle in cmdline for needle in needles):
                    groups.add(os.getpgid(int(pid)))
        return groups - {own_group}

    groups = _sigkill_until_gone(abandoned, os.killpg, time.monotonic() + 20)
    if groups:
        raise ServiceError(f"process groups of an abandoned real node outlived SIGKILL: {sorted(groups)}")


def _sigkill_until_gone(find, kill, deadline: float) -> set[int]:
    """kill(each, SIGKILL) for what find() returns (pids, or process groups with os.killpg), again until
    find() returns nothing or the monotonic deadline passes; what find() returned last."""
    while (found := find()) and time.monotonic() < deadline:
        for each in found:
            with contextlib.suppress(ProcessLookupError):
                kill(each, 9)
        time.sleep(0.2)
    return found


def _remove_cgroup(path: Path) -> None:
    """rmdir a cgroup and every child, deepest first (a v1 cgroup with tasks refuses)."""
    if not path.is_dir():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            child.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def pod_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


CONTAINERD_TOML = """\
version = 3
root = "{root}"
state = "{state}"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "{opt}"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause}"
[plugins.'io.containerd.cri.v1.runtime']
  # this machine kind has no CAP_SYS_RESOURCE: a sandbox that lowers its oom_score_adj fails to start
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{runc_root}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{cni_conf}"
"""


def _system_labels(app: str) -> dict:
    return {"k8s-app": app, "app.kubernetes.io/part-of": "aiplatform-test-node"}


def network_policy_enforcer(image: str) -> list[dict]:
    """kube-network-policies as a DaemonSet on the real node (it reads the API in-cluster only)."""
    name, ns = "kube-network-policies", "kube-system"
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": [{"apiGroups": [""], "resources": ["pods", "namespaces", "nodes"], "verbs": ["list", "watch"]},
                   {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": ns},
         "spec": {"selector": {"matchLabels": {"k8s-app": name}}, "template": {
             "metadata": {"labels": _system_labels(name)},
             "spec": {"hostNetwork": True, "dnsPolicy": "Default", "serviceAccountName": name,
                      "nodeSelector": NODE_SELECTOR, "tolerations": [TOLERATION],
                      "containers": [{
                          "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                          "args": ["--hostname-override=$(MY_NODE_NAME)", "--v=2", "--nfqueue-id=98",
                                   "--disable-nri", f"--metrics-bind-address=127.0.0.1:{free_port()}"],
                          "env": [{"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                          "securityContext": {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}},
                          "resources": {"requests": {"cpu": "50m", "memory": "50Mi"}}}]}}}},
    ]


COREFILE = """\
.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
    }
    cache 30
    loop
}
"""


def cluster_dns(image: str) -> list[dict]:
    """CoreDNS serving cluster.local at CLUSTER_DNS, forwarding nothing (no query leaves the machine)."""
    ns, labels = "kube-system", _system_labels("kube-dns")
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": ns},
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": ns},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"k8s-app": "kube-dns"}}, "template": {
             "metadata": {"labels": labels},
             "spec": {"serviceAccountName": "coredns", "dnsPolicy": "Default", "nodeSelector": NODE_SELECTOR,
                      "tolerations": [TOLERATION],
                      "containers": [{
                          "name": "coredns", "image": image, "imagePullPolicy": "IfNotPresent",
                          "args": ["-conf", "/etc/coredns/Corefile"],
                          "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                          "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"},
                                    {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}],
                          "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 1},
                          "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}],
                      "volumes": [{"name": "config", "configMap": {"name": "coredns"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": ns, "labels": labels},
         "spec": {"clusterIP": CLUSTER_DNS, "selector": {"k8s-app": "kube-dns"},
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}},
    ]
