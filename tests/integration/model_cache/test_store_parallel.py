"""ollama_store_model's parallel ranged downloads against the real registry behind a real nginx CDN that caps
each connection's rate (tests.services.nginx.RegistryFront), then a real Ollama 0.18.3 on the seeded store.

The CDN's log is the witness: every request with its Range header, when it ran and the bytes it sent. A
seeder runs as Ansible runs a module (its own Python process), so that it can be killed with SIGKILL in the
middle of a download and run again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import ollama_manifest_digest
from tests.playbook import link_work_tree
from tests.services.nginx import RegistryFront
from tests.services.ollama import OllamaServer
from tests.services.registry import MODEL_MEDIA_TYPE, sha256_file

# 2 MiB/s per connection: slow enough that the parts of a 64 MiB blob clearly overlap and a kill lands
# mid-download, fast enough for a test (8 connections: ~4 s)
RATE = "2m"
LARGE_MB = 64
PART = "4MiB"


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def model_layer(published) -> dict:
    return next(d for d in published.manifest["layers"] if d["mediaType"] == MODEL_MEDIA_TYPE)


def expected_files(published, host: str) -> set[str]:
    name, tag = published.ref.split("/", 1)[1].rsplit(":", 1)
    blobs = {"blobs/" + d["digest"].replace(":", "-") for d in [published.manifest["config"],
                                                                  *published.manifest["layers"]]}
    return {f"manifests/{host}/{name}/{tag}"} | blobs


def most_at_once(requests: list[dict]) -> int:
    """The largest number of the requests that were running at the same moment."""
    events = sorted([(r["start"], 1) for r in requests] + [(r["end"], -1) for r in requests])
    running = peak = 0
    for _when, step in events:
        running += step
        peak = max(peak, running)
    return peak


class SeederProcess:
    """ollama_store_model in a Python process of its own, as Ansible runs a module."""

    def __init__(self, workdir: Path, args: dict):
        collections = link_work_tree(workdir / "collections")
        self.args_file = workdir / f"args-{time.monotonic_ns()}.json"
        self.args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(collections), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ansible_collections.aiplatform.ollama.plugins.modules.ollama_store_model",
             str(self.args_file)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def result(self, timeout: float = 300) -> dict:
        out, _ = self.proc.communicate(timeout=timeout)
        lines = out.decode(errors="replace").strip().splitlines()
        assert lines, f"the module printed nothing (exit {self.proc.returncode})"
        try:
            return json.loads(lines[-1])
        except ValueError:
            raise AssertionError(f"the module exited {self.proc.returncode}: {out.decode()[-3000:]}") from None

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture(scope="module")
def large(registry, model_factory):
    """A 64 MiB model of its own, so that the layer's bytes in the CDN log are this suite's."""
    return registry.push_model(model_factory.large(LARGE_MB, seed=12), name="parallel/large", tag="v1")


@pytest.fixture(scope="module")
def capped(registry, tmp_path_factory):
    """The registry behind a CDN that gives each connection 2 MiB/s."""
    with RegistryFront.start(tmp_path_factory.mktemp("capped-cdn"), registry, cdn=f"limit_rate {RATE};") as front:
        yield front


@pytest.fixture(scope="module")
def seeded_capped(capped, large, seed_module, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("seeded-capped")
    store = workdir / "models"
    args = dict(name=capped.ref(large), path=str(store), insecure=True, part_size=PART, parts=8)
    since = capped.mark()
    started = time.monotonic()
    result = seed_module(args)
    seconds = time.monotonic() - started
    capped.settled(quiet=0.3)
    return dict(workdir=workdir, store=store, args=args, result=result, seconds=seconds,
                requests=capped.requests(model_layer(large)["digest"], since))


def test_capped_cdn_parts_download_at_once_and_the_model_is_complete(seeded_capped, large, capped):
    result, store = seeded_capped["result"], seeded_capped["store"]
    assert not result["failed"], result["msg"]
    assert result["changed"] and result["action"] == "seeded"
    assert result["digest"] == ollama_manifest_digest(large.manifest)
    assert result["bytes_transferred"] == large.size
    assert set(files_under(store)) == expected_files(large, capped.host)  # no partial, progress or lock file
    layer = model_layer(large)
    assert sha256_file(store / "blobs" / layer["digest"].replace(":", "-")) == layer["digest"]

    requests = seeded_capped["requests"]
    ranged = [r for r in requests if r["status"] == 206]
    assert len(ranged) == len(requests) >= layer["size"] // (4 << 20), requests
    assert sum(r["sent"] for r in requests) == layer["size"]  # every byte once
    assert most_at_once(requests) >= 6, requests
    # one stream at 2 MiB/s would take size/2MiB seconds; eight of them about an eighth of that
    single_stream = layer["size"] / (2 << 20)
    assert seeded_capped["seconds"] < single_stream / 3, (seeded_capped["seconds"], single_stream)


def test_real_ollama_runs_the_model_seeded_through_the_capped_cdn(seeded_capped, capped, large):
    with OllamaServer.start(seeded_capped["workdir"]) as server:
        tags = json.loads(urllib.request.urlopen(server.url + "/api/tags", timeout=30).read())["models"]
        listed = {m["name"]: m for m in tags}
        ref = capped.ref(large)
        assert ref in listed, f"{ref} not in {sorted(listed)}"
        assert "sha256:" + listed[ref]["digest"] == seeded_capped["result"]["digest"]
        assert server.generate(ref)["eval_count"] > 0
    # the server's start-up prune kept every blob: the store was complete and nothing else was in it
    assert set(files_under(seeded_capped["store"])) == expected_files(large, capped.host)


def test_second_run_changes_nothing(seeded_capped, seed_module):
    again = seed_module(seeded_capped["args"])
    assert not again["failed"] and not again["changed"] and again["bytes_transferred"] == 0, again
    assert not seed_module(seeded_capped["args"], check_mode=True)["changed"]


def progress_file(store: Path, digest: str) -> Path:
    return store / "blobs" / (digest.replace(":", "-") + "-partial.json")


def kill_midway(front, published, store: Path, workdir: Path, fraction: float = 0.4, **options) -> dict:
    """Start a seeder, SIGKILL it once `fraction` of the model layer is recorded, and return what the CDN sent
    it and the progress it left."""
    layer = model_layer(published)
    since = front.mark()
    seeder = SeederProcess(workdir, dict(name=front.ref(published), path=str(store), insecure=True, **options))
    saved = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and seeder.proc.poll() is None:
        try:
            saved = json.loads(progress_file(store, layer["digest"]).read_text())
        except (OSError, ValueError):
            saved = None
        if saved and sum(done for _o, _s, done in saved["parts"]) >= fraction * layer["size"]:
            break
        time.sleep(0.02)
    assert seeder.proc.poll() is None, f"the seeder ended before it could be killed: {seeder.result()}"
    seeder.kill()
    front.settled()
    saved = json.loads(progress_file(store, layer["digest"]).read_text())  # the last checkpoint before the kill
    return dict(saved=saved, sent=sum(r["sent"] for r in front.requests(layer["digest"], since)))


@pytest.fixture(scope="module")
def larger(registry, model_factory):
    """160 MiB: long enough at the capped rate that the kill at 20% lands while eight 8 MiB parts are under
    way, and leaves more than half of the layer for the rerun."""
    return registry.push_model(model_factory.large(160, seed=17), name="parallel/larger", tag="v1")


def test_killed_seeder_resumes_each_part_and_fetches_only_what_it_had_not_saved(capped, larger, tmp_path,
                                                                                seed_module):
    large = larger
    store = tmp_path / "models"
    layer = model_layer(large)
    # 8 parts of 8 MiB start at once and run ~4 s: the kill, after 20% (32 MiB, ~2 s), lands inside them, not
    # as new ones begin (nginx sends a new request's first second of data at once, which a kill then would lose)
    killed = kill_midway(capped, large, store, tmp_path, fraction=0.2, part_size="8MiB", parts=8)
    parts = killed["saved"]["parts"]
    assert (store / "blobs" / (layer["digest"].replace(":", "-") + "-partial")).exists()
    assert sum(1 for _o, _s, done in parts if done > 0) >= 4, parts  # several parts were under way at once
    remainder = layer["size"] - killed["sent"]
    assert remainder > layer["size"] // 2, killed

    since = capped.mark()
    again = seed_module(dict(name=capped.ref(large), path=str(store), insecure=True, part_size="8MiB", parts=8))
    assert not again["failed"], again["msg"]
    capped.settled(quiet=0.3)
    rerun = capped.requests(layer["digest"], since)
    fetched = sum(r["sent"] for r in rerun)
    # each unfinished part is asked for from where its own progress stopped, and nothing else
    expected_starts = sorted(offset + done for offset, size, done in parts if done < size)
    assert sorted(int(r["range"].split("=")[1].split("-")[0]) for r in rerun) == expected_starts, (rerun, parts)
    assert all(r["status"] == 206 for r in rerun)
    assert fetched == again["bytes_transferred"]
    # the rerun fetches exactly what the last checkpoint had not saved, and the checkpoints come often enough
    # that several parts had saved progress mid-way (above). What the CDN sent the killed run beyond its last
    # checkpoint is not the seeder's to bound: on a busy machine the kernel's socket buffers hold megabytes the
    # killed process never read, so it is printed, not asserted.
    assert fetched == sum(size - done for _offset, size, done in parts if done < size), (fetched, parts)
    print(f"rerun fetched {fetched} bytes for a remainder of {remainder}: {fetched / remainder:.3f}")
    assert set(files_under(store)) == expected_files(large, capped.host)
    assert sha256_file(store / "blobs" / layer["digest"].replace(":", "-")) == layer["digest"]


@pytest.fixture(scope="module")
def no_range(registry, tmp_path_factory):
    """The registry behind a CDN that ignores Range: every blob GET is a 200 with the whole blob."""
    with RegistryFront.start(tmp_path_factory.mktemp("no-range-cdn"), registry, cdn="max_ranges 0;") as front:
        yield front


def test_server_without_range_support_gets_one_stream(no_range, large, tmp_path, seed_module):
    store = tmp_path / "models"
    layer = model_layer(large)
    since = no_range.mark()
    result = seed_module(dict(name=no_range.ref(large), path=str(store), insecure=True, part_size=PART, parts=8))
    assert not result["failed"], result["msg"]
    no_range.settled(quiet=0.3)
    requests = no_range.requests(layer["digest"], since)
    assert [(r["status"], r["sent"]) for r in requests] == [(200, layer["size"])], requests
    assert set(files_under(store)) == expected_files(large, no_range.host)
    assert sha256_file(store / "blobs" / layer["digest"].replace(":", "-")) == layer["digest"]


def test_parts_left_by_a_killed_run_are_discarded_when_the_server_ignores_range(capped, no_range, large, tmp_path,
                                                                                seed_module):
    store = tmp_path / "models"
    layer = model_layer(large)
    kill_midway(capped, large, store, tmp_path, part_size=PART, parts=8)
    since = no_range.mark()
    result = seed_module(dict(name=no_range.ref(large), path=str(store), insecure=True, part_size=PART, parts=8))
    assert not result["failed"], result["msg"]
    no_range.settled(quiet=0.3)
    assert [r["status"] for r in no_range.requests(layer["digest"], since)] == [200]
    assert result["bytes_transferred"] >= layer["size"]
    assert sha256_file(store / "blobs" / layer["digest"].replace(":", "-")) == layer["digest"]
    assert not any(name.endswith(("-partial", ".json", ".lock")) for name in files_under(store))


def test_two_seeders_at_once_make_one_correct_model(capped, large, tmp_path):
    store = tmp_path / "models"
    layer = model_layer(large)
    since = capped.mark()
    args = dict(name=capped.ref(large), path=str(store), insecure=True, part_size=PART, parts=8)
    seeders = [SeederProcess(tmp_path, args), SeederProcess(tmp_path, args)]
    results = [seeder.result() for seeder in seeders]
    assert not any(r.get("failed") for r in results), results
    assert sorted(r["changed"] for r in results) == [False, True], results
    assert len({r["digest"] for r in results}) == 1 and results[0]["digest"] == ollama_manifest_digest(large.manifest)
    capped.settled(quiet=0.3)
    # the one that waited found the model complete: the layer came from the CDN once
    assert sum(r["sent"] for r in capped.requests(layer["digest"], since)) == layer["size"]
    assert set(files_under(store)) == expected_files(large, capped.host)
    assert sha256_file(store / "blobs" / layer["digest"].replace(":", "-")) == layer["digest"]


def test_a_held_lock_makes_the_seeder_wait_then_fail_naming_the_holder(tmp_path, tiny_model, seed_module):
    from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore

    store = tmp_path / "models"
    with OllamaStore(str(store)).lock(holder="a test holding the store"):
        started = time.monotonic()
        result = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, lock_timeout=1))
        waited = time.monotonic() - started
    assert result["failed"] and waited >= 1, result
    assert "locked by another writer" in result["msg"] and f"pid {os.getpid()}" in result["msg"], result["msg"]
    assert "a test holding the store" in result["msg"] and "lock_timeout" in result["msg"], result["msg"]
    assert files_under(store / "manifests") == [] and files_under(store / "blobs") == []
    assert not (store / ".ollama_store.lock").exists()  # the holder removed it when it let go
    again = seed_module(dict(name=tiny_model.ref, path=str(store), insecure=True, lock_timeout=1))
    assert not again["failed"] and again["changed"], again


def test_several_models_download_at_once_within_max_connections(capped, large, registry, model_factory, tmp_path,
                                                                seed_module):
    other = registry.push_model(model_factory.large(32, seed=13), name="parallel/other", tag="v1")
    store = tmp_path / "models"
    since = capped.mark()
    result = seed_module(dict(name=[capped.ref(large), capped.ref(other)], path=str(store), insecure=True,
                              part_size=PART, parts=8, max_connections=6))
    assert not result["failed"], result["msg"]
    assert [m["name"] for m in result["models"]] == [capped.ref(large), capped.ref(other)]
    assert all(m["changed"] and m["action"] == "seeded" for m in result["models"])
    assert result["models"][1]["digest"] == ollama_manifest_digest(other.manifest)
    assert isinstance(result["diff"], list) and len(result["diff"]) == 2
    capped.settled(quiet=0.3)
    mine = [r for r in capped.requests(since=since) if r["uri"].startswith("/cdn/")]
    big = [r for r in mine if model_layer(large)["digest"].split(":")[1] in r["uri"]]
    small = [r for r in mine if model_layer(other)["digest"].split(":")[1] in r["uri"]]
    assert big and small
    # both models' layers were downloading at the same time, never more than 6 connections in all
    assert min(r["end"] for r in big + small) < max(r["start"] for r in big + small)
    assert most_at_once(big + small) == 6, mine
    assert any(b["start"] < s["end"] and s["start"] < b["end"] for b in big for s in small)
    assert set(files_under(store)) == expected_files(large, capped.host) | expected_files(other, capped.host)
    assert not seed_module(dict(name=[capped.ref(large), capped.ref(other)], path=str(store)))["changed"]


def test_verified_finds_a_corrupt_and_a_missing_blob_and_repairs_them(tmp_path, registry, model_factory, seed_module):
    model = registry.push_model(model_factory.tiny(seed=14), name="parallel/verify", tag="v1")
    store = tmp_path / "models"
    args = dict(name=model.ref, path=str(store), insecure=True)
    assert seed_module(args)["changed"]
    layer = model_layer(model)
    blob = store / "blobs" / layer["digest"].replace(":", "-")
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, different content: only the sha256 can tell
    blob.write_bytes(bytes(raw))
    template = next(d for d in model.manifest["layers"] if d is not layer)
    (store / "blobs" / template["digest"].replace(":", "-")).unlink()

    found = seed_module(dict(args, state="verified"))
    assert found["failed"] and not found["changed"]
    assert found["blobs_corrupt"] == [layer["digest"]] and found["blobs_missing"] == [template["digest"]]
    assert layer["digest"] in found["msg"] and "corrupt" in found["msg"] and "repair: true" in found["msg"]
    assert template["digest"] in found["msg"] and "missing" in found["msg"]

    check = seed_module(dict(args, state="verified", repair=True), check_mode=True)
    assert check["changed"] and check["action"] == "repaired" and not check["failed"], check
    assert sorted(check["blobs_downloaded"]) == sorted([layer["digest"], template["digest"]])
    assert check["diff"]["before"]["blobs_corrupt"] == [layer["digest"]]
    assert blob.read_bytes() == bytes(raw)  # check mode wrote nothing

    repaired = seed_module(dict(args, state="verified", repair=True))
    assert not repaired["failed"] and repaired["changed"] and repaired["action"] == "repaired", repaired
    assert sha256_file(blob) == layer["digest"]
    assert sha256_file(store / "blobs" / template["digest"].replace(":", "-")) == template["digest"]
    assert repaired["digest"] == ollama_manifest_digest(model.manifest)
    again = seed_module(dict(args, state="verified"))
    assert not again["failed"] and not again["changed"] and again["blobs_corrupt"] == again["blobs_missing"] == []


def test_verified_of_a_model_not_in_the_store(tmp_path, tiny_model, seed_module):
    store = tmp_path / "models"
    args = dict(name=tiny_model.ref, path=str(store), insecure=True, state="verified")
    missing = seed_module(args)
    assert missing["failed"] and "not in the store" in missing["msg"] and files_under(store) == []
    repaired = seed_module(dict(args, repair=True))
    assert not repaired["failed"] and repaired["changed"] and repaired["digest"] == ollama_manifest_digest(
        tiny_model.manifest)


def test_latest_follows_a_moved_tag_and_prunes_what_it_replaced(tmp_path, registry, model_factory, seed_module):
    first = registry.push_model(model_factory.tiny(seed=15), name="parallel/moving", tag="v1")
    store = tmp_path / "models"
    args = dict(name=first.ref, path=str(store), insecure=True, state="latest")
    seeded = seed_module(args)
    assert seeded["changed"] and seeded["digest"] == ollama_manifest_digest(first.manifest)
    assert not seed_module(args)["changed"]

    moved = registry.push_model(model_factory.tiny(seed=16), name="parallel/moving", tag="v1")
    assert not seed_module(dict(args, state="present"))["changed"]  # present does not ask the registry
    check = seed_module(args, check_mode=True)
    assert check["changed"] and check["digest"] == ollama_manifest_digest(moved.manifest)
    assert check["diff"]["before"]["digest"] == seeded["digest"] and check["diff"]["after"]["digest"] == check["digest"]
    updated = seed_module(args)
    assert not updated["failed"] and updated["changed"] and updated["digest"] == check["digest"]
    old = {d["digest"] for d in [first.manifest["config"], *first.manifest["layers"]]}
    new = {d["digest"] for d in [moved.manifest["config"], *moved.manifest["layers"]]}
    assert set(updated["blobs_removed"]) == old - new and old - new
    assert set(updated["blobs_downloaded"]) == new - old
    assert {name for name in files_under(store) if name.startswith("blobs/")} == {
        "blobs/" + d.replace(":", "-") for d in new}
    assert not seed_module(args)["changed"]


@pytest.mark.parametrize(("option", "value", "says"), [
    ("part_size", "0", "part_size must be at least 1MiB"),
    ("part_size", "12 apples", "part_size must be a size such as 64MiB"),
    ("part_size", "-5M", "part_size must be a size"),
    ("parts", 0, "parts must be at least 1, got 0"),
    ("parts", -2, "parts must be at least 1, got -2"),
    ("max_connections", -1, "max_connections must be at least 1, got -1"),
    ("lock_timeout", -3, "lock_timeout must be 0 or more seconds, got -3"),
])
def test_bad_options_fail_naming_the_option(tmp_path, tiny_model, seed_module, option, value, says):
    result = seed_module({"name": tiny_model.ref, "path": str(tmp_path / "models"), "insecure": True, option: value})
    assert result["failed"] and says in result["msg"], result["msg"]
    assert not (tmp_path / "models").exists()
