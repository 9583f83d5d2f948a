"""Session-wide real services: an OCI registry with a blob CDN, an Ollama server, a model factory.

Every process started here is stopped when the session ends; their logs stay in pytest's
basetemp (the last three runs are kept) and are attached to the report of a failing test.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests import schemas
from tests.module_runner import run_module
from tests.playbook import link_work_tree
from tests.services import process
from tests.services.certs import make_ca_and_server_cert
from tests.services.cluster import Cluster, bin_dir
from tests.services.git_server import GitServer
from tests.services.models import make_gguf
from tests.services.nginx import nginx, nginx_bin
from tests.services.ollama import OllamaServer
from tests.services.registry import PublishedModel, Registry

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_RUNNING: list = []

# Test modules import the plugins as Ansible does, ansible_collections.aiplatform.ollama.*, when
# pytest collects them: the work tree must be that package before collection, never an installed copy.
_IMPORT_ROOT = link_work_tree(Path(tempfile.mkdtemp(prefix="aiplatform-ollama-import-")))
sys.path.insert(0, str(_IMPORT_ROOT))


def fixtures_dir() -> Path:
    """The shared fixtures (chart, Flux CRDs, Ollama API spec); AIPLATFORM_FIXTURES_DIR overrides."""
    default = PROJECT_ROOT.parent / "shared" / "fixtures"
    return Path(os.environ.get("AIPLATFORM_FIXTURES_DIR", default))


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    path = fixtures_dir()
    if not path.is_dir():
        pytest.fail(f"fixtures not found at {path}: run `make setup` (fetches the pinned chart and CRDs) "
                    "or set AIPLATFORM_FIXTURES_DIR")
    return path


@pytest.fixture(scope="session")
def module_runner():
    """run_module(module, args, check_mode=False, diff=True) -> the module's result dict."""
    return run_module


@pytest.fixture(scope="session")
def flux_schemas(shared_fixtures) -> dict:
    """(apiVersion, kind) -> a strict JSON schema from the Flux CRDs in the shared fixtures."""
    crd_dir = shared_fixtures / "flux-crds"
    if not crd_dir.is_dir():
        pytest.fail(f"Flux CRDs not found at {crd_dir}: run `make setup` or set AIPLATFORM_FIXTURES_DIR "
                    "to a copy of the fixtures")
    return schemas.load_flux_schemas(crd_dir)


@pytest.fixture(scope="session")
def validate_flux(flux_schemas):
    """Check one Flux object against its CRD's schema, unknown fields included."""
    return lambda obj: schemas.validate_flux(obj, flux_schemas)


@pytest.fixture(scope="session")
def validate_k8s():
    """Check one built-in Kubernetes object against the 1.37 schemas, strictly."""
    return schemas.validate_k8s


class ModelFactory:
    """Deterministic GGUF files, cached per (seed, size) for the session."""

    def __init__(self, workdir: Path):
        self.workdir = workdir

    def tiny(self, seed: int = 0) -> Path:
        path = self.workdir / f"tiny-seed{seed}.gguf"
        return path if path.exists() else make_gguf(path, seed=seed)

    def large(self, size_mb: int, seed: int = 0) -> Path:
        path = self.workdir / f"large-{size_mb}mb-seed{seed}.gguf"
        return path if path.exists() else make_gguf(path, seed=seed, size_mb=size_mb)


@pytest.fixture(scope="session")
def work_tree_collections(tmp_path_factory) -> Path:
    """An ANSIBLE_COLLECTIONS_PATH in which aiplatform.ollama is this work tree."""
    return link_work_tree(tmp_path_factory.mktemp("collections"))


@pytest.fixture(scope="session")
def model_factory(tmp_path_factory) -> ModelFactory:
    return ModelFactory(tmp_path_factory.mktemp("models"))


def _attached(service_context):
    """Run a service for the session, its logs attached to every failing test's report."""
    with service_context as service:
        _RUNNING.append(service)
        yield service
        _RUNNING.remove(service)


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    if not shutil.which("docker-registry") or not nginx_bin():
        pytest.fail("docker-registry and nginx are needed for the registry fixture: run `make setup`")
    yield from _attached(Registry.start(tmp_path_factory.mktemp("registry")))


@pytest.fixture(scope="session")
def ollama(tmp_path_factory):
    yield from _attached(OllamaServer.start(tmp_path_factory.mktemp("ollama")))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A real control plane, kwok nodes and a real node (kubelet, containerd, CNI, kube-proxy, CoreDNS,
    NetworkPolicy enforcement), Flux and a Helm repository with the real chart. It fails, never
    skips, when it cannot start: apply mode is what users run."""
    yield from _attached(Cluster.start(tmp_path_factory.mktemp("cluster"), with_real_node=True))


@pytest.fixture(scope="session")
def kubectl() -> str:
    """kubectl of the test cluster's Kubernetes version (its kustomize builds the GitOps trees)."""
    path = bin_dir() / "kubectl"
    if not os.access(path, os.X_OK):
        pytest.fail(f"kubectl not found at {path}: run `make setup` (builds it with the test cluster)")
    return str(path)


@pytest.fixture(scope="session")
def git_server(tmp_path_factory):
    """git's smart-HTTP backend behind nginx: what a Flux GitRepository clones."""
    yield from _attached(GitServer.start(tmp_path_factory.mktemp("git")))


@pytest.fixture(scope="session")
def tiny_model(registry, model_factory) -> PublishedModel:
    """The tiny model, published as <registry>/library/tiny:latest."""
    return registry.push_model(model_factory.tiny(seed=0), name="library/tiny", tag="latest")


TLS_GATEWAY_SERVER = """\
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {work}/server.pem;
    ssl_certificate_key {work}/server.key;
    location / {{
      proxy_pass {upstream};
      proxy_buffering off;
      proxy_read_timeout 600s;
    }}"""


@pytest.fixture(scope="session")
def tls_gateway(ollama, tmp_path_factory):
    """The Ollama server behind a real nginx terminating TLS with a certificate signed by a private CA
    made for the test (openssl), as a gateway with a private CA serves it: {"url", "ca" (its PEM file)}."""
    if not nginx_bin() or not shutil.which("openssl"):
        pytest.fail("nginx and openssl are needed for the TLS gateway: run `make setup`")
    work = tmp_path_factory.mktemp("tls-gateway")
    make_ca_and_server_cert(work)
    port = process.free_port()
    server = TLS_GATEWAY_SERVER.format(port=port, work=work, upstream=ollama.url)
    with nginx("nginx-tls-gateway", work, server, port=port):
        yield {"url": f"https://127.0.0.1:{port}", "ca": str(work / "ca.pem")}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when == "call":
        for service in _RUNNING:
            report.sections.append((f"log of {type(service).__name__}", service.logs()))
    return report


# last: after pytest's own sessionfinish, which tears down the session's fixtures when a run was
# interrupted (else the services would be killed here before their fixtures could stop them in order)
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """No test may leave a service process behind: fail the run if one survived its fixture."""
    shutil.rmtree(_IMPORT_ROOT, ignore_errors=True)
    survivors = [p for p in process.STARTED if p.group_alive()]
    for proc in survivors:
        proc.stop()
    if survivors:
        names = ", ".join(f"{p.name} (pid {p.proc.pid})" for p in survivors)
        print(f"\nERROR: service processes left running after the tests: {names}")
        session.exitstatus = 1
