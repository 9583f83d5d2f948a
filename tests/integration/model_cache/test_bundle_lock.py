"""ollama_bundle's import and ollama_store_model's seed share the store's lock, against real processes:
a Python process of its own holding the lock, and a real seeder downloading from the real registry
behind a real nginx CDN slow enough to be caught in the middle (and killed there, leaving its
`-partial` file and the parts' progress).

Decided for those leftovers: an import that writes the blob removes them once the blob is in place
(no seeder resumes a blob the store holds complete, and a `-partial` is allocated at the blob's full
size); leftovers of blobs the import does not write are left to their seeder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time

import pytest

from tests.file_tree import tree
from tests.integration.model_cache.test_store_parallel import SeederProcess, model_layer, progress_file
from tests.module_runner import run_module
from tests.playbook import link_work_tree
from tests.services.nginx import RegistryFront
from tests.services.registry import sha256_file

HOLDER = """
import sys
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore
with OllamaStore(sys.argv[1]).lock(holder="a backup of the store"):
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes stdin
"""


def bundle_module(args: dict) -> dict:
    return run_module("ollama_bundle", args)


@pytest.fixture(scope="module")
def published(registry, model_factory):
    """16 MiB of weights: at the slow CDN's rate a seed of it runs long enough to be caught holding the lock."""
    return registry.push_model(model_factory.large(16, seed=21), name="bundle/locked", tag="v1")


@pytest.fixture(scope="module")
def bundle(published, tmp_path_factory):
    """The model seeded from the registry by ollama_store_model, then exported."""
    workdir = tmp_path_factory.mktemp("bundle-lock-source")
    store = workdir / "models"
    seeded = run_module("ollama_store_model", dict(name=published.ref, path=str(store), insecure=True,
                                                   progress_interval=0))
    assert not seeded["failed"], seeded["msg"]
    path = workdir / "locked.tar"
    exported = bundle_module(dict(state="exported", path=str(path), store=str(store), models=[published.ref]))
    assert not exported["failed"] and exported["changed"], exported
    return dict(path=path, source=store)


@pytest.fixture(scope="module")
def slow(registry, tmp_path_factory):
    """The registry behind a CDN that gives each connection 256 KiB/s: two connections take ~30 s for 16 MiB."""
    with RegistryFront.start(tmp_path_factory.mktemp("slow-cdn"), registry, cdn="limit_rate 256k;") as front:
        yield front


def test_a_process_holding_the_store_lock_makes_the_import_fail_naming_it(bundle, published, tmp_path):
    store = tmp_path / "models"
    collections = link_work_tree(tmp_path / "collections")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(collections)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree(store)
        args = dict(state="imported", path=str(bundle["path"]), store=str(store), lock_timeout=1)
        refused = bundle_module(args)
        assert refused["failed"] and refused["error"]["kind"] == "locked", refused
        assert f"pid {holder.pid}" in refused["msg"] and "a backup of the store" in refused["msg"], refused["msg"]
        assert "lock_timeout" in refused["msg"] and "nothing was written" in refused["msg"], refused["msg"]
        assert tree(store) == before
    finally:
        holder.stdin.close()  # the holder lets go and exits
        holder.wait(30)
    assert holder.returncode == 0
    imported = bundle_module(args)
    assert not imported["failed"] and imported["changed"], imported
    assert tree(store) == tree(bundle["source"])  # the model, complete; no lock file, no temporary file


def test_import_waits_for_a_real_seed_and_supersedes_what_its_kill_left(bundle, published, slow, tiny_model,
                                                                         tmp_path):
    store = tmp_path / "models"
    layer = model_layer(published)
    tiny = run_module("ollama_store_model", dict(name=tiny_model.ref, path=str(store), insecure=True,
                                                 progress_interval=0))
    assert not tiny["failed"], tiny["msg"]
    seeder = SeederProcess(tmp_path, dict(name=slow.ref(published), path=str(store), insecure=True, parts=2,
                                          max_connections=2, progress_interval=0))
    try:
        # the seeder holds the lock from before its first byte until it ends: its progress file says it runs
        deadline = time.monotonic() + 60
        while not progress_file(store, layer["digest"]).exists() and seeder.proc.poll() is None:
            assert time.monotonic() < deadline, "the seeder wrote no progress within 60 s"
            time.sleep(0.05)
        assert seeder.proc.poll() is None, seeder.result()
        args = dict(state="imported", path=str(bundle["path"]), store=str(store), lock_timeout=1)
        refused = bundle_module(args)
        assert refused["failed"] and refused["error"]["kind"] == "locked", refused
        assert f"pid {seeder.proc.pid}" in refused["msg"], refused["msg"]
        assert f"ollama_store_model present {slow.ref(published)}" in refused["msg"], refused["msg"]
        assert not list(store.rglob("bundle-*")) and not list(store.rglob("manifest-*"))
        assert not (store / "manifests" / published.ref.split("/")[0] / "bundle").exists()
        assert seeder.proc.poll() is None  # the refused import did not disturb the seed
    finally:
        if seeder.proc.poll() is None:
            seeder.kill()
    slow.settled()
    partial = store / "blobs" / (layer["digest"].replace(":", "-") + "-partial")
    saved = json.loads(progress_file(store, layer["digest"]).read_text())
    assert partial.is_file() and 0 < sum(done for _o, _s, done in saved["parts"]) < layer["size"], saved

    # an export from this store reads manifests: the half-seeded model's files are not carried
    tiny_bundle = tmp_path / "tiny.tar"
    exported = bundle_module(dict(state="exported", path=str(tiny_bundle), store=str(store), models=[tiny_model.ref]))
    assert not exported["failed"], exported
    with tarfile.open(tiny_bundle) as tar:
        names = sorted(tar.getnames())
    digests = [tiny_model.manifest["config"]["digest"]] + [d["digest"] for d in tiny_model.manifest["layers"]]
    assert names == sorted(["index.json", "manifests/" + tiny_model.ref.replace(":latest", "/latest")]
                           + ["blobs/" + d.replace(":", "-") for d in digests]), names

    imported = bundle_module(args)
    assert not imported["failed"] and imported["changed"], imported
    assert layer["digest"] in imported["blobs"]
    assert sha256_file(store / "blobs" / layer["digest"].replace(":", "-")) == layer["digest"]
    assert not partial.exists() and not progress_file(store, layer["digest"]).exists()
    source_manifest = bundle["source"] / "manifests" / published.ref.replace(":v1", "/v1")
    assert (store / "manifests" / published.ref.replace(":v1", "/v1")).read_bytes() == source_manifest.read_bytes()
    assert not list(store.rglob("*-partial*")) and not (store / ".ollama_store.lock").exists()
    assert not bundle_module(args)["changed"]
    # the seed, run again, finds every blob the import wrote complete: it downloads nothing, writes its manifest
    reseeded = run_module("ollama_store_model", dict(name=slow.ref(published), path=str(store), insecure=True,
                                                     progress_interval=0))
    assert not reseeded["failed"] and reseeded["changed"] and reseeded["blobs_downloaded"] == [], reseeded
