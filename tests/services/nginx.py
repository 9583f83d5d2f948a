"""nginx from Debian's packages, run from a work directory of its own: the registry's blob
CDN, and the gateways (token, path prefix, TLS) that stand in front of Ollama in the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from .process import ManagedProcess

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
