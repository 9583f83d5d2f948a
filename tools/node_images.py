#!/usr/bin/env python3
"""The container images the test cluster's real node runs, built from what `make setup` has here.

This machine reaches no image registry, as an air-gapped site would not: every image is assembled
from local binaries (with the shared libraries `ldd` names) and written as an OCI image-layout tar
that tests/services/real_node.py imports into the node's containerd. The images:

  ollama    the Ollama that tools/setup.sh builds, laid out as the official ollama/ollama image is:
            /bin/ollama, root's home /root (so the store defaults to /root/.ollama), OLLAMA_HOST
            0.0.0.0:11434, entrypoint `ollama serve`; busybox supplies the shell and tools the chart's
            scripts and the seed Job use
  tools     busybox and curl, with Debian's CA bundle: the seed Job's and the probe pods' tools (what
            curlimages/curl is to diagnose_probe_image)
  gateway   nginx, proxying to the Service it is configured with: the stand-in for agentgateway-proxy
  coredns, kube-network-policies, pause: the node's own pods

Each tar is rebuilt only when its inputs (files and their sizes and times) change; `images.json` in
the output directory lists the tars and their image names. Usage: node_images.py [OUT_DIR]
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

CACHE = Path(os.environ.get("AIPLATFORM_OLLAMA_CACHE", Path.home() / ".cache" / "aiplatform-ollama"))
BIN = Path(os.environ.get("CLUSTER_BIN_DIR", CACHE / "cluster" / "bin"))
OUT = Path(os.environ.get("CLUSTER_IMAGES_DIR", CACHE / "cluster" / "images"))
REGISTRY = "localhost/aiplatform-test"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"
# busybox applets the images' scripts call (the seed Job, the chart's and probes' shell snippets)
APPLETS = ("sh", "ash", "cat", "cp", "date", "echo", "env", "grep", "head", "hostname", "id", "kill", "ln", "ls",
           "mkdir", "mktemp", "mv", "nslookup", "printf", "ps", "rm", "sed", "sleep", "sort", "tail", "tee",
           "test", "timeout", "touch", "tr", "true", "false", "uname", "wc", "wget", "awk", "cut", "sha256sum",
           "stat", "du", "df", "find", "xargs", "expr", "seq", "nc", "which", "basename", "dirname", "chmod")


class Layer:
    """A root filesystem as one reproducible tar layer: files owned by root, times zero."""

    def __init__(self):
        self.entries: dict[str, tuple] = {}

    def directory(self, path: str, mode: int = 0o755):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), ("dir", mode))

    def data(self, path: str, content: bytes, mode: int = 0o644):
        self.directory(os.path.dirname(path.strip("/")) or ".")
        self.entries[path.strip("/")] = ("file", mode, content)

    def file(self, path: str, source: Path, mode: int | None = None):
        source = Path(source).resolve()
        self.data(path, source.read_bytes(), mode if mode is not None else source.stat().st_mode & 0o777)

    def symlink(self, path: str, target: str):
        self.directory(os.path.dirname(path.strip("/")) or ".")
        self.entries[path.strip("/")] = ("symlink", target)

    def binary(self, path: str, source: Path):
        """source at path, and every shared library it loads at the path the loader looks for it."""
        self.file(path, source, 0o755)
        for library in shared_libraries(source):
            self.file(library, Path(library), 0o755)

    def busybox(self):
        self.file("/bin/busybox", BIN / "busybox", 0o755)
        for applet in APPLETS:
            self.symlink(f"/bin/{applet}", "busybox")

    def tar(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.entries):
                if name == ".":
                    continue
                kind, *rest = self.entries[name]
                info = tarfile.TarInfo(name)
                info.mtime = 0
                if kind == "dir":
                    info.type, info.mode = tarfile.DIRTYPE, rest[0]
                    tar.addfile(info)
                elif kind == "symlink":
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, rest[0], 0o777
                    tar.addfile(info)
                else:
                    info.mode, info.size = rest[0], len(rest[1])
                    tar.addfile(info, io.BytesIO(rest[1]))
        return buffer.getvalue()


def shared_libraries(binary: Path) -> list[str]:
    """The absolute paths of the libraries ldd resolves for binary, its loader included; none when
    it is static."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    if result.returncode != 0:  # "not a dynamic executable"
        return []
    paths = []
    for line in result.stdout.splitlines():
        if "not found" in line:
            raise SystemExit(f"{binary}: {line.strip()}: install the library, then run make setup again")
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            paths.append(match.group(1))
    return paths


def oci_archive(name: str, layer: bytes, config: dict) -> bytes:
    """An OCI image-layout tar holding one image named name (containerd's import reads the name
    from the io.containerd.image.name annotation)."""
    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    layer_digest = digest(layer)
    image_config = json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                               "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(image_config),
                   "size": len(image_config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}]}, sort_keys=True).encode()
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest),
         "size": len(manifest), "annotations": {"io.containerd.image.name": name,
                                                "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}]},
        sort_keys=True).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
                           *((f"blobs/sha256/{digest(d)[7:]}", d) for d in (layer, image_config, manifest))]:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def ollama_bin() -> Path:
    return Path(os.environ.get("OLLAMA_BIN", CACHE / "bin" / "ollama"))


def version_of(argv: list[str]) -> str:
    """The first x.y.z a program prints of itself (nginx -v prints to stderr)."""
    result = subprocess.run(argv, capture_output=True, text=True)
    match = re.search(r"\d+\.\d+\.\d+", result.stdout + result.stderr)
    return match.group(0) if match else "unknown"


def image_ollama() -> tuple[str, Layer, dict, list[Path]]:
    layer = Layer()
    layer.busybox()
    layer.binary("/bin/ollama", ollama_bin())
    layer.data("/etc/passwd", PASSWD)
    layer.data("/etc/group", GROUP)
    layer.directory("/root/.ollama", 0o700)
    layer.directory("/tmp", 0o1777)
    config = {"Entrypoint": ["/bin/ollama"], "Cmd": ["serve"], "WorkingDir": "/",
              "Env": [PATH_ENV, "OLLAMA_HOST=0.0.0.0:11434"], "ExposedPorts": {"11434/tcp": {}}}
    return f"{REGISTRY}/ollama:{version_of([str(ollama_bin()), '--version'])}", layer, config, [ollama_bin()]


def image_tools() -> tuple[str, Layer, dict, list[Path]]:
    layer = Layer()
    layer.busybox()
    layer.binary("/usr/bin/curl", Path("/usr/bin/curl"))
    layer.file("/etc/ssl/certs/ca-certificates.crt", Path("/etc/ssl/certs/ca-certificates.crt"))
    layer.data("/etc/passwd", PASSWD)
    layer.data("/etc/group", GROUP)
    layer.directory("/tmp", 0o1777)
    config = {"Cmd": ["sleep", "infinity"], "WorkingDir": "/", "Env": [PATH_ENV]}
    return (f"{REGISTRY}/tools:{version_of(['/usr/bin/curl', '--version'])}", layer, config,
            [BIN / "busybox", Path("/usr/bin/curl")])


def image_gateway() -> tuple[str, Layer, dict, list[Path]]:
    nginx = Path("/usr/sbin/nginx")
    layer = Layer()
    layer.busybox()
    layer.binary("/usr/sbin/nginx", nginx)
    layer.data("/etc/passwd", PASSWD)
    layer.data("/etc/group", GROUP)
    for directory in ("/var/log/nginx", "/var/lib/nginx", "/etc/nginx", "/run"):
        layer.directory(directory)
    layer.directory("/tmp", 0o1777)
    # its configuration comes from a ConfigMap mounted at /etc/nginx/conf.d
    layer.data("/etc/nginx/nginx.conf", b"""\
user root;
worker_processes 1;
daemon off;
pid /run/nginx.pid;
error_log stderr;
events { worker_connections 256; }
http {
  access_log /dev/stdout;
  client_body_temp_path /tmp/body;
  proxy_temp_path /tmp/proxy;
  include /etc/nginx/conf.d/*.conf;
}
""")
    config = {"Entrypoint": ["/usr/sbin/nginx", "-e", "stderr", "-c", "/etc/nginx/nginx.conf"],
              "WorkingDir": "/", "Env": [PATH_ENV]}
    return f"{REGISTRY}/gateway:{version_of([str(nginx), '-v'])}", layer, config, [nginx]


def image_static(name: str, binary: Path, path: str, tag: str, busybox: bool = False):
    def build():
        layer = Layer()
        if busybox:
            layer.busybox()
        layer.file(path, binary, 0o755)
        layer.directory("/tmp", 0o1777)
        return f"{REGISTRY}/{name}:{tag}", layer, {"Entrypoint": [path], "WorkingDir": "/", "Env": [PATH_ENV]}, [binary]
    return build


BUILDERS = {
    "ollama": image_ollama,
    "tools": image_tools,
    "gateway": image_gateway,
    "coredns": image_static("coredns", BIN / "coredns", "/bin/coredns", os.environ.get("COREDNS_VERSION", "v1.15.0")),
    "kube-network-policies": image_static("kube-network-policies", BIN / "kube-network-policies", "/bin/netpol",
                                          os.environ.get("KNP_VERSION", "v0.8.0") + "-nfqueue-xt"),
    "pause": image_static("pause", BIN / "pause", "/pause", os.environ.get("KUBERNETES_VERSION", "v1.36.4")),
}


def fingerprint(paths: list[Path]) -> str:
    parts = [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths]
    parts.append(hashlib.sha256(Path(__file__).read_bytes()).hexdigest())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "images.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    for key, builder in BUILDERS.items():
        name, layer, config, inputs = builder()
        stamp = fingerprint(inputs)
        tar = out / f"{key}.tar"
        if tar.exists() and index.get(key, {}).get("fingerprint") == stamp and index[key].get("name") == name:
            continue
        print(f"==> image {name}", flush=True)
        partial = tar.with_suffix(".tar.partial")
        partial.write_bytes(oci_archive(name, layer.tar(), config))
        partial.replace(tar)
        index[key] = {"name": name, "tar": tar.name, "fingerprint": stamp}
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
