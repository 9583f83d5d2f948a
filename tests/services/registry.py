"""A real OCI registry (CNCF distribution, Debian's docker-registry) shaped like registry.ollama.ai.

Ollama 0.18.3 downloads a blob only through a redirect to another hostname (its CDN), so the
registry's `redirect` storage middleware points blob GETs at nginx serving the same storage root
under `localhost`, while the registry itself answers on `127.0.0.1`. For the pods of the test
cluster's real node, which cannot reach this host's loopback, both listen on addresses of the node's
own link instead (`Registry.start(workdir, host=..., cdn_host=...)`), the CDN on a second address.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .nginx import nginx
from .process import Service, free_port

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
TEMPLATE_MEDIA_TYPE = "application/vnd.ollama.image.template"
PARAMS_MEDIA_TYPE = "application/vnd.ollama.image.params"
DEFAULT_TEMPLATE = "{{ .Prompt }}"

REGISTRY_CONF = """\
version: 0.1
log: {{level: info}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
  redirect: {{disable: false}}
middleware:
  storage:
    - name: redirect
      options: {{baseurl: "http://{cdn_host}:{cdn_port}/"}}
http:
  addr: {host}:{port}
  secret: test-registry-secret
"""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@dataclass
class PublishedModel:
    """A model pushed to the registry, as Ollama refers to it."""

    ref: str
    manifest_digest: str
    manifest: dict
    size: int = field(default=0)


class Registry(Service):
    """A running registry plus its CDN. Use `Registry.start(workdir)` as a context manager."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1", cdn_host: str = "localhost"):
        super().__init__()
        self.workdir = Path(workdir)
        self.root = self.workdir / "data"
        self.port = free_port()
        self.cdn_port = free_port()
        self.listen, self.cdn_listen = host, cdn_host
        self.host = f"{host}:{self.port}"
        self.url = f"http://{self.host}"
        self.cdn_url = f"http://{cdn_host}:{self.cdn_port}"

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        cdn_address = "127.0.0.1" if self.cdn_listen == "localhost" else self.cdn_listen
        server = f"    listen {cdn_address}:{self.cdn_port};\n    root {self.root};"
        self._keep(self._stack.enter_context(
            nginx("nginx-cdn", self.workdir / "cdn", server, ready_url=self.cdn_url + "/")))
        registry_conf = self.workdir / "registry.yml"
        registry_conf.write_text(REGISTRY_CONF.format(root=self.root, host=self.listen, port=self.port,
                                                      cdn_host=self.cdn_listen, cdn_port=self.cdn_port))
        self._spawn("docker-registry", ["docker-registry", "serve", registry_conf],
                    log_path=self.workdir / "registry.log").wait_http(self.url + "/v2/")

    # -- the plain registry v2 upload API, as `ollama push` speaks it --------------------------

    def push_blob(self, repo: str, path: Path) -> dict:
        digest = sha256_file(path)
        size = path.stat().st_size
        head = urllib.request.Request(f"{self.url}/v2/{repo}/blobs/{digest}", method="HEAD")
        try:
            urllib.request.urlopen(head).close()
            return {"digest": digest, "size": size}
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise
        start = urllib.request.Request(f"{self.url}/v2/{repo}/blobs/uploads/", method="POST", data=b"")
        with urllib.request.urlopen(start) as resp:
            location = urllib.parse.urljoin(self.url, resp.headers["Location"])
        sep = "&" if "?" in location else "?"
        with open(path, "rb") as body:
            put = urllib.request.Request(f"{location}{sep}digest={digest}", method="PUT", data=body,
                                         headers={"Content-Length": str(size),
                                                  "Content-Type": "application/octet-stream"})
            urllib.request.urlopen(put).close()
        return {"digest": digest, "size": size}

    def push_manifest(self, repo: str, tag: str, manifest: dict) -> str:
        body = json.dumps(manifest, separators=(",", ":")).encode()
        put = urllib.request.Request(f"{self.url}/v2/{repo}/manifests/{tag}", method="PUT", data=body,
                                     headers={"Content-Type": MANIFEST_V2})
        with urllib.request.urlopen(put) as resp:
            return resp.headers["Docker-Content-Digest"]

    def get_manifest(self, repo: str, tag: str) -> tuple[str, dict]:
        req = urllib.request.Request(f"{self.url}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_V2})
        with urllib.request.urlopen(req) as resp:
            return resp.headers["Docker-Content-Digest"], json.loads(resp.read())

    def push_model(self, gguf: Path, name: str = "library/tiny", tag: str = "latest",
                   template: str = DEFAULT_TEMPLATE, params: dict | None = None,
                   family: str = "llama", config_extra: dict | None = None) -> PublishedModel:
        """Publish a GGUF file as an Ollama model: model, template and params layers plus a config, to which
        config_extra adds fields (renderer, parser, requires)."""
        staging = self.workdir / "staging" / name.replace("/", "_") / tag
        staging.mkdir(parents=True, exist_ok=True)
        layers = [dict(mediaType=MODEL_MEDIA_TYPE, **self.push_blob(name, gguf))]
        extra = [(TEMPLATE_MEDIA_TYPE, template.encode())]
        if params:
            extra.append((PARAMS_MEDIA_TYPE, json.dumps(params).encode()))
        for index, (media_type, content) in enumerate(extra):
            blob = staging / f"layer{index}"
            blob.write_bytes(content)
            layers.append(dict(mediaType=media_type, **self.push_blob(name, blob)))
        config = {
            "model_format": "gguf", "model_family": family, "model_families": [family],
            "model_type": "", "file_type": "", "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            **(config_extra or {}),
        }
        config_path = staging / "config.json"
        config_path.write_text(json.dumps(config))
        config_desc = dict(mediaType=CONFIG_MEDIA_TYPE, **self.push_blob(name, config_path))
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_V2, "config": config_desc, "layers": layers}
        digest = self.push_manifest(name, tag, manifest)
        size = config_desc["size"] + sum(layer["size"] for layer in layers)
        return PublishedModel(ref=f"{self.host}/{name}:{tag}", manifest_digest=digest, manifest=manifest, size=size)
