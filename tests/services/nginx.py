"""nginx from Debian's packages, run from a work directory of its own: the registry's blob
CDN, a rate-capping CDN in front of the registry (RegistryFront), and the gateways (token, path
prefix, TLS) that stand in front of Ollama in the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from .process import ManagedProcess, Service, free_port

CONF = """\
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {work}/access.log;
  client_body_temp_path {work}/tmp/body;
  proxy_temp_path {work}/tmp/proxy;
  fastcgi_temp_path {work}/tmp/fastcgi;
  uwsgi_temp_path {work}/tmp/uwsgi;
  scgi_temp_path {work}/tmp/scgi;
  sendfile on;
  default_type application/octet-stream;
{http}
  server {{
{server}
  }}
}}
"""


def nginx_bin() -> str | None:
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")


@contextlib.contextmanager
def nginx(name: str, workdir: Path, server: str, ready_url: str | None = None, port: int | None = None,
          http: str = ""):
    """Run nginx with one `server { ... }` body, and http-level directives of the caller's own (a
    log_format and access_log recording what a test checks); wait for ready_url (HTTP) or port (e.g. TLS)."""
    binary = nginx_bin()
    if not binary:
        raise FileNotFoundError("nginx is not installed: run `make setup`")
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    # as root, nginx's workers would drop to nobody and could not read the test's private directories
    conf.write_text(CONF.format(user="user root;" if os.geteuid() == 0 else "", work=workdir, server=server,
                                http=http))
    proc = ManagedProcess(name, [binary, "-p", str(workdir), "-c", str(conf)], workdir / "nginx.log")
    try:
        if ready_url:
            proc.wait_http(ready_url)
        elif port:
            proc.wait_tcp(port)
        yield proc
    finally:
        proc.stop()



@contextlib.contextmanager
def token_gateway(name: str, workdir: Path, upstream: str, required: dict, http: str = ""):
    """A gateway in front of Ollama as an API gateway stands: /ollama/ proxied to upstream, 401 unless
    every header of `required` ({"Authorization": "Bearer t"}) arrives with its value. Yields its URL."""
    port = free_port()
    checks = "\n".join(f'      if ($http_{name_.lower().replace("-", "_")} != "{value}") {{ return 401; }}'
                       for name_, value in required.items())
    server = f"""\
    listen 127.0.0.1:{port};
    location /ollama/ {{
{checks}
      proxy_pass {upstream}/;
      proxy_buffering off;
      proxy_read_timeout 600s;
    }}"""
    with nginx(name, workdir, server, ready_url=f"http://127.0.0.1:{port}/", http=http):
        yield f"http://127.0.0.1:{port}/ollama"

# A CDN in front of the registry that caps each connection's rate, as the CDNs real registries redirect
# blob downloads to do, and logs every request with its Range header, status and the bytes it sent.
FRONT_LOG = """\
  log_format front '$msec $request_time $request_method $uri $status "$http_range" $body_bytes_sent';
  access_log {work}/front.log front;"""
FRONT_SERVER = """\
    listen 127.0.0.1:{port};
    location /cdn/ {{
      alias {root}/;
      {cdn}
    }}
    location / {{
      proxy_pass http://{registry_host};
      proxy_buffering off;
      # the registry's blob redirect lands here too, still on another host name (localhost)
      proxy_redirect http://localhost:{cdn_port}/ http://localhost:{port}/cdn/;
    }}"""


class RegistryFront(Service):
    """nginx in front of a tests.services.registry.Registry: the registry API on 127.0.0.1:<port>, its blob
    downloads redirected to `/cdn/` on localhost:<port>, served from the registry's storage with `cdn`
    directives (e.g. `limit_rate 20m;`, or `max_ranges 0;` for a server that ignores Range). `host` takes the
    registry's place in model references; `requests()` reads the log."""

    def __init__(self, workdir: Path, registry, cdn: str = ""):
        super().__init__()
        self.workdir = Path(workdir)
        self.registry = registry
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.server = FRONT_SERVER.format(port=self.port, root=registry.root, cdn=cdn, registry_host=registry.host,
                                          cdn_port=registry.cdn_port)
        self.proc = None

    def _start(self) -> None:
        self.proc = self._keep(self._stack.enter_context(
            nginx("nginx-registry-front", self.workdir, self.server, ready_url=f"http://{self.host}/v2/",
                  http=FRONT_LOG.format(work=self.workdir))))

    def ref(self, published) -> str:
        """A published model's reference through this front instead of the registry's own address."""
        return published.ref.replace(self.registry.host, self.host, 1)

    def mark(self) -> int:
        """Where the log ends now: requests(since=mark()) are those logged after this call."""
        log = self.workdir / "front.log"
        return log.stat().st_size if log.exists() else 0

    def requests(self, digest: str | None = None, since: int = 0) -> list[dict]:
        """Logged requests (of one blob's CDN downloads when `digest` is given): start and end time, method,
        uri, status, Range header, bytes sent. nginx logs a request once its response is over."""
        log = self.workdir / "front.log"
        if not log.exists():
            return []
        with open(log, "rb") as handle:
            handle.seek(since)
            lines = handle.read().decode().splitlines()
        found = []
        for line in lines:
            end, took, method, uri, status, rest = line.split(" ", 5)
            range_header, sent = rest.rsplit(" ", 1)
            entry = {"start": float(end) - float(took), "end": float(end), "method": method, "uri": uri,
                     "status": int(status), "range": range_header.strip('"'), "sent": int(sent)}
            if digest is None or (uri.startswith("/cdn/") and digest.split(":", 1)[-1] in uri):
                found.append(entry)
        return found

    def settled(self, quiet: float = 1.0, timeout: float = 30.0) -> None:
        """Wait until the log has not grown for `quiet` seconds: the requests of a killed client are logged
        once nginx notices the closed connection."""
        deadline = time.monotonic() + timeout
        last, since = self.mark(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.mark()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
