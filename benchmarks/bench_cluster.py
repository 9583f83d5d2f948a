"""The test cluster's start, and site.yml to a Ready HelmRelease against the same objects applied bare.

For context on the apply-mode tests: how long the real control plane, kwok and Flux take to be ready
(cluster_ready_s), and how long site.yml on the test inventory takes from its start to the
HelmRelease's Ready condition (site_apply_to_ready_s). The baseline is the same HelmRepository and
HelmRelease applied straight to the API in a namespace of their own and reconciled by the same
controllers (bare_flux_ready_s); the ratio is what the whole flow (profile, seed Job, validation,
Ansible itself) costs on top of Flux's own reconcile.
"""

from __future__ import annotations

import datetime
import tempfile
import time
from pathlib import Path

from benchmarks.measure import collection_path
from tests.playbook import role_objects, run_playbook
from tests.services.cluster import Cluster
from tests.services.models import make_gguf
from tests.services.ollama import OllamaServer
from tests.services.registry import Registry

INVENTORY = Path(__file__).resolve().parent.parent / "tests" / "integration" / "cluster" / "inventory"
HELMRELEASE = ("helm.toolkit.fluxcd.io/v2", "HelmRelease")


def _ready_at(release: dict | None) -> float | None:
    for cond in ((release or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready" and cond["status"] == "True":
            return datetime.datetime.fromisoformat(cond["lastTransitionTime"].replace("Z", "+00:00")).timestamp()
    return None


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench_cluster_") as tmp:
        work = Path(tmp)
        collections = collection_path(work / "collections")
        with Cluster.start(work / "cluster") as cluster, Registry.start(work / "registry") as registry, \
                OllamaServer.start(work / "ollama") as ollama:
            model = registry.push_model(make_gguf(work / "tiny.gguf", seed=0), name="library/tiny", tag="latest")
            ollama.cli("pull", "--insecure", model.ref)
            ollama.derive(f"{model.ref}-t2", model.ref, num_thread=2)  # what the prod pod's init container makes
            env = {**cluster.env(), "AIPLATFORM_TEST_MODEL": model.ref, "AIPLATFORM_TEST_OLLAMA_URL": ollama.url}

            # baseline: the objects apply mode sends, applied bare, in namespaces of their own
            bare = {"ollama_flux_namespace": "bench-bare", "ollama_flux_flux_namespace": "bench-bare",
                    "ollama_flux_release_name": "bench-bare", "ollama_flux_pvc_mode": "role",
                    "ollama_flux_namespace_create": True}
            objects = role_objects(collections, "ollama_flux", str(INVENTORY), "__ollama_flux_app_objects",
                                   work, bare, env=env)
            started = time.time()
            cluster.apply(*(item["object"] for item in objects))
            cluster.wait_for("bare HelmRelease Ready",
                             lambda: _ready_at(cluster.find(*HELMRELEASE, "bench-bare", "bench-bare")), 600)
            bare_s = time.time() - started

            started = time.time()
            result = run_playbook(collections, "site.yml", str(INVENTORY), {}, env=env, timeout=1200)
            if result.returncode != 0:
                raise RuntimeError(f"site.yml failed:\n{result.output[-3000:]}")
            site_s = _ready_at(cluster.get(*HELMRELEASE, "ollama", "flux-system")) - started
            return {"cluster_ready_s": round(cluster.ready_seconds, 1), "bare_flux_ready_s": round(bare_s, 1),
                    "site_apply_to_ready_s": round(site_s, 1), "site_apply_vs_bare_flux": site_s / bare_s}
