"""ollama_bundle against real components: a store a real Ollama 0.18.3 pulled into is exported, imported
into an empty store that a second real Ollama then serves (it generates tokens), and pushed into a
second, empty real registry that a third Ollama pulls from with `ollama pull --insecure`.

Ollama prunes at start-up every blob no manifest references, so a server that lists the imported
model with the same digest and generates from it proves the imported store complete. Malicious
bundles (built with tarfile from the real export) go through the module against a real store, which
must be left exactly as it was.
"""

from __future__ import annotations

import json
import tarfile
import urllib.request
from pathlib import Path

import pytest

from tests.bundle_tars import members_of, write_tar
from tests.file_tree import tree
from tests.module_runner import run_module
from tests.playbook import run_playbook
from tests.services.ollama import OllamaServer
from tests.services.registry import MODEL_MEDIA_TYPE, Registry


def bundle_module(args: dict, check_mode: bool = False) -> dict:
    return run_module("ollama_bundle", args, check_mode=check_mode)


def listed(server: OllamaServer) -> dict:
    with urllib.request.urlopen(server.url + "/api/tags", timeout=30) as resp:
        return {m["name"]: m for m in json.loads(resp.read())["models"]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model):
    """A real Ollama pulls the tiny model from the registry; its store is then exported (check mode first)."""
    workdir = tmp_path_factory.mktemp("bundle-source")
    with OllamaServer.start(workdir) as server:
        server.cli("pull", "--insecure", tiny_model.ref)
        digest = listed(server)[tiny_model.ref]["digest"]
    path = workdir / "tiny.tar"
    args = dict(state="exported", path=str(path), store=str(workdir / "models"), models=[tiny_model.ref])
    check = bundle_module(args, check_mode=True)
    written_by_check = path.exists()
    first = bundle_module(args)
    return dict(workdir=workdir, path=path, args=args, check=check, first=first, digest="sha256:" + digest,
                written_by_check=written_by_check)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A second registry, empty: the private mirror of an air-gapped site."""
    with Registry.start(tmp_path_factory.mktemp("bundle-mirror")) as registry:
        yield registry


def test_export_from_a_store_ollama_pulled(exported, tiny_model):
    check, first = exported["check"], exported["first"]
    assert not check["failed"] and check["changed"] and not exported["written_by_check"], check
    assert not first["failed"], first["msg"]
    assert first["changed"] and first["bytes_written"] == exported["path"].stat().st_size
    assert [(m["name"], m["digest"], m["size"]) for m in first["models"]] == [
        (f"{tiny_model.ref}", exported["digest"], tiny_model.size)]
    assert len(first["blobs"]) == len(tiny_model.manifest["layers"]) + 1
    again = bundle_module(exported["args"])
    assert not again["failed"] and not again["changed"] and again["blobs"] == [], again
    assert not list(exported["workdir"].glob("*-partial"))


def test_import_into_an_empty_store_then_ollama_generates(exported, tmp_path, tiny_model):
    store = tmp_path / "models"
    args = dict(state="imported", path=str(exported["path"]), store=str(store))
    check = bundle_module(args, check_mode=True)
    assert check["changed"] and not store.exists(), check
    first = bundle_module(args)
    assert not first["failed"] and first["changed"], first
    assert [m["action"] for m in first["models"]] == ["imported"]
    imported = tree(store)
    again = bundle_module(args)
    assert not again["failed"] and not again["changed"] and again["bytes_written"] == 0, again
    assert tree(store) == imported
    with OllamaServer.start(tmp_path, models_dir=store) as server:
        models = listed(server)
        assert tiny_model.ref in models, sorted(models)
        assert "sha256:" + models[tiny_model.ref]["digest"] == exported["digest"]
        assert server.generate(tiny_model.ref)["eval_count"] > 0
    # the server's prune kept every blob: the store held no unreferenced or partial file
    assert tree(store) == imported


def test_push_into_an_empty_registry_then_ollama_pulls(exported, mirror, tmp_path, tiny_model):
    args = dict(state="pushed", path=str(exported["path"]), registry=mirror.host, insecure=True)
    check = bundle_module(args, check_mode=True)
    assert not check["failed"] and check["changed"], check
    assert not (mirror.root / "docker").exists() or not list((mirror.root / "docker").rglob("link"))
    pushed = bundle_module(args)
    assert not pushed["failed"] and pushed["changed"], pushed
    name = f"{mirror.host}/library/tiny:latest"
    assert [(m["name"], m["action"]) for m in pushed["models"]] == [(name, "pushed")]
    assert len(pushed["blobs"]) == len(tiny_model.manifest["layers"]) + 1
    again = bundle_module(args)
    assert not again["failed"] and not again["changed"] and again["blobs"] == [], again
    digest, manifest = mirror.get_manifest("library/tiny", "latest")
    assert digest == exported["digest"] and manifest["layers"] == tiny_model.manifest["layers"]
    with OllamaServer.start(tmp_path) as server:
        server.cli("pull", "--insecure", name)
        assert "sha256:" + listed(server)[name]["digest"] == exported["digest"]
        assert server.generate(name)["eval_count"] > 0


def test_push_to_an_unreachable_registry_fails_clearly(exported):
    from tests.services.process import free_port

    host = f"127.0.0.1:{free_port()}"
    result = bundle_module(dict(state="pushed", path=str(exported["path"]), registry=host, insecure=True,
                                timeout=5))
    assert result["failed"] and result["error"]["kind"] == "registry"
    assert f"cannot reach registry {host}" in result["msg"] and "run again" in result["msg"], result["msg"]


# -- malicious bundles through the module, against a store a real import filled --------------------






def link(kind: bytes, name: str, target: str):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def model_blob(members: list) -> str:
    manifest = json.loads(next(d for m, d in members if m.name.startswith("manifests/")))
    layer = next(item for item in manifest["layers"] if item["mediaType"].endswith(".model"))
    return "blobs/" + layer["digest"].replace(":", "-")


MALICIOUS = {
    "dotdot": (lambda ms, b: ms + [(tarfile.TarInfo("manifests/../../../escaped"), b"x")], "unsafe"),
    "absolute": (lambda ms, b: ms + [(tarfile.TarInfo("/tmp/aiplatform-bundle-escaped"), b"x")], "unsafe"),
    "symlink": (lambda ms, b: [m for m in ms if m[0].name != b] + [link(tarfile.SYMTYPE, b, "/etc/passwd")],
                "unsafe"),
    "hardlink": (lambda ms, b: [m for m in ms if m[0].name != b] + [link(tarfile.LNKTYPE, b, "index.json")],
                 "unsafe"),
    "checksum": (lambda ms, b: [(m, d[:-1] + bytes([d[-1] ^ 1]) if m.name == b else d) for m, d in ms], "corrupt"),
    "unexpected": (lambda ms, b: ms + [(tarfile.TarInfo("blobs/README"), b"hello")], "invalid"),
}


@pytest.fixture(scope="module")
def other_model_store(tmp_path_factory, registry, model_factory):
    """A store holding a different model (seeded by ollama_store_model), that the bad bundles target."""
    other = registry.push_model(model_factory.tiny(seed=411), name="bundle/other", tag="v1")
    store = tmp_path_factory.mktemp("bundle-target") / "models"
    seeded = run_module("ollama_store_model", dict(name=other.ref, path=str(store), insecure=True))
    assert not seeded["failed"] and seeded["changed"], seeded
    return store


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_bundle_is_refused_and_nothing_is_written(exported, other_model_store, tmp_path, case):
    edit, kind = MALICIOUS[case]
    members = members_of(exported["path"])
    bad = write_tar(tmp_path / f"{case}.tar", edit(members, model_blob(members)))
    parent = other_model_store.parent
    before = tree(parent)
    result = bundle_module(dict(state="imported", path=str(bad), store=str(other_model_store)))
    assert result["failed"] and result["error"]["kind"] == kind, result
    assert str(bad) in result["msg"] and "nothing was written" in result["msg"], result["msg"]
    assert tree(parent) == before
    assert not Path("/tmp/aiplatform-bundle-escaped").exists()


def test_playbooks_export_then_import_into_a_store_and_a_registry(exported, mirror, tmp_path, tiny_model,
                                                                  work_tree_collections):
    bundle = tmp_path / "site.tar"
    source = str(exported["workdir"] / "models")
    common = {"bundle_path": str(bundle), "bundle_models": [tiny_model.ref]}
    out = run_playbook(work_tree_collections, "bundle_export.yml", "local", dict(common, bundle_store=source))
    assert out.returncode == 0 and out.recap["changed"] == 1, out.output[-3000:]
    assert bundle.read_bytes() == exported["path"].read_bytes()  # the same models give the same file
    store = tmp_path / "models"
    for changed in (1, 0):
        out = run_playbook(work_tree_collections, "bundle_import.yml", "local", dict(common, bundle_store=str(store)))
        assert out.returncode == 0 and out.recap["changed"] == changed, out.output[-3000:]
    assert (store / "manifests" / tiny_model.ref.split("/", 1)[0] / "library" / "tiny" / "latest").is_file()
    out = run_playbook(work_tree_collections, "bundle_import.yml", "local",
                       dict(common, bundle_registry=mirror.host, bundle_insecure=True))
    assert out.returncode == 0 and out.recap["failed"] == 0, out.output[-3000:]
    assert mirror.get_manifest("library/tiny", "latest")[0] == exported["digest"]


# -- export straight from the registry -------------------------------------------------------------


def cdn_blob_gets(registry: Registry, manifest: dict) -> int:
    """Requests for the model's blobs the registry's CDN has logged: every blob download ends there."""
    log = registry.workdir / "cdn" / "access.log"
    hexes = [d["digest"].split(":", 1)[1] for d in [manifest["config"]] + manifest["layers"]]
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(1 for line in lines if any(h in line for h in hexes))


def registry_blob_file(registry: Registry, digest: str) -> Path:
    hexd = digest.split(":", 1)[1]
    return registry.root / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"


def leftovers(directory: Path) -> list:
    return sorted(p.name for p in directory.iterdir())


def registry_export_args(path: Path, *models: str, **options) -> dict:
    return dict(state="exported", path=str(path), models=list(models), insecure=True, **options)


@pytest.fixture(scope="module")
def from_registry(tmp_path_factory, registry, tiny_model):
    """The tiny model exported without a store: check mode, the export, a second run; blob GETs counted."""
    workdir = tmp_path_factory.mktemp("bundle-from-registry")
    path = workdir / "tiny.tar"
    args = registry_export_args(path, tiny_model.ref)
    gets = [cdn_blob_gets(registry, tiny_model.manifest)]
    check = bundle_module(args, check_mode=True)
    written_by_check = path.exists()
    gets.append(cdn_blob_gets(registry, tiny_model.manifest))
    first = bundle_module(args)
    gets.append(cdn_blob_gets(registry, tiny_model.manifest))
    stat = path.stat()
    again = bundle_module(args)
    gets.append(cdn_blob_gets(registry, tiny_model.manifest))
    return dict(workdir=workdir, path=path, args=args, check=check, first=first, again=again, gets=gets,
                written_by_check=written_by_check, stat=(stat.st_ino, stat.st_mtime_ns))


def test_registry_export_is_byte_for_byte_the_export_of_a_seeded_store(from_registry, exported, tmp_path,
                                                                       tiny_model, seed_module):
    first = from_registry["first"]
    assert not first["failed"] and first["changed"], first
    # the store Ollama pulled into, and one ollama_store_model seeded, give the same file as the registry
    seeded = tmp_path / "models"
    assert not seed_module(dict(name=tiny_model.ref, path=str(seeded), insecure=True))["failed"]
    from_seeded = bundle_module(dict(state="exported", path=str(tmp_path / "seeded.tar"), store=str(seeded),
                                     models=[tiny_model.ref]))
    assert not from_seeded["failed"], from_seeded
    ours = members_of(from_registry["path"])
    for store_export in (exported["path"], tmp_path / "seeded.tar"):
        theirs = members_of(store_export)
        assert [m.name for m, _d in ours] == [m.name for m, _d in theirs]
        assert json.loads(ours[0][1]) == json.loads(theirs[0][1])  # index.json, first
        assert [d for _m, d in ours] == [d for _m, d in theirs]
        assert from_registry["path"].read_bytes() == store_export.read_bytes()
    assert [(m["name"], m["digest"], m["size"]) for m in first["models"]] == [
        (tiny_model.ref, exported["digest"], tiny_model.size)]
    assert first["bytes_written"] == from_registry["path"].stat().st_size


def test_registry_export_downloads_each_blob_once_and_check_mode_and_a_rerun_none(from_registry, tiny_model):
    check, again, gets = from_registry["check"], from_registry["again"], from_registry["gets"]
    assert not check["failed"] and check["changed"] and not from_registry["written_by_check"], check
    assert len(check["blobs"]) == len(tiny_model.manifest["layers"]) + 1
    blobs = len(tiny_model.manifest["layers"]) + 1
    # check mode read the manifest only; the export fetched every blob once; the second run none
    assert gets[1] - gets[0] == 0 and gets[2] - gets[1] == blobs and gets[3] - gets[2] == 0, gets
    assert not again["failed"] and not again["changed"] and again["blobs"] == [], again
    assert sorted(again["skipped"]) == sorted(from_registry["first"]["blobs"])
    stat = from_registry["path"].stat()
    assert (stat.st_ino, stat.st_mtime_ns) == from_registry["stat"]
    assert leftovers(from_registry["workdir"]) == ["tiny.tar"]


def test_registry_export_imports_into_an_empty_store_then_ollama_generates(from_registry, tmp_path, tiny_model):
    store = tmp_path / "models"
    imported = bundle_module(dict(state="imported", path=str(from_registry["path"]), store=str(store)))
    assert not imported["failed"] and imported["changed"], imported
    files = tree(store)
    with OllamaServer.start(tmp_path, models_dir=store) as server:
        models = listed(server)
        assert tiny_model.ref in models, sorted(models)
        assert "sha256:" + models[tiny_model.ref]["digest"] == from_registry["first"]["models"][0]["digest"]
        assert server.generate(tiny_model.ref)["eval_count"] > 0
    assert tree(store) == files


def test_registry_export_progress_counts_the_downloaded_bytes(tmp_path, registry, tiny_model):
    from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.export import export_bundle
    from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.progress import BundleProgress
    from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import ProgressFile

    snapshot = tmp_path / "progress.json"
    options = dict(insecure=True, registry_username=None, registry_password=None, timeout=30,
                   validate_certs=True, ca_path=None)
    result = export_bundle(None, [tiny_model.ref], str(tmp_path / "tiny.tar"),
                           progress=BundleProgress(ProgressFile(str(snapshot), every=0)), registry=options)
    assert result["changed"], result
    snap = json.loads(snapshot.read_text())
    blobs = len(tiny_model.manifest["layers"]) + 1
    assert (snap["completed"], snap["total"], snap["percent"]) == (tiny_model.size, tiny_model.size, 100.0), snap
    assert snap["status"].startswith(f"blob {blobs}/{blobs} sha256:"), snap


def test_registry_export_of_an_unknown_model_fails_clearly_and_writes_nothing(tmp_path, registry):
    name = f"{registry.host}/library/no-such-model:v9"
    result = bundle_module(registry_export_args(tmp_path / "none.tar", name))
    assert result["failed"] and result["error"]["kind"] == "registry", result
    assert result["error"]["registry_error"] == "not_found" and result["error"]["status"] == 404, result
    assert f"model library/no-such-model:v9 not found in registry {registry.host}" in result["msg"], result["msg"]
    assert "check the model name and tag" in result["msg"] and "no bundle was written" in result["msg"]
    assert leftovers(tmp_path) == []


def test_registry_export_from_an_unreachable_registry_fails_clearly(tmp_path):
    from tests.services.process import free_port

    host = f"127.0.0.1:{free_port()}"
    result = bundle_module(registry_export_args(tmp_path / "none.tar", f"{host}/library/tiny:v1", timeout=5))
    assert result["failed"] and result["error"]["registry_error"] == "unreachable", result
    assert f"cannot reach registry {host}" in result["msg"] and "check its network" in result["msg"], result["msg"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_registry_export_of_a_damaged_registry_blob_fails_naming_it(tmp_path, registry, model_factory, damage):
    gguf = model_factory.tiny(seed={"flipped": 631, "truncated": 632}[damage])
    model = registry.push_model(gguf, name=f"bundle/damaged-{damage}", tag="v1")
    layer = next(d for d in model.manifest["layers"] if d["mediaType"] == MODEL_MEDIA_TYPE)
    data = registry_blob_file(registry, layer["digest"])
    raw = bytearray(data.read_bytes())
    if damage == "flipped":
        raw[len(raw) // 2] ^= 0xFF  # same size, other content: only the sha256 tells
    else:
        del raw[len(raw) // 2:]  # the CDN serves what is left, with that length
    data.write_bytes(bytes(raw))
    try:
        result = bundle_module(registry_export_args(tmp_path / "damaged.tar", model.ref))
    finally:
        data.write_bytes(gguf.read_bytes())  # the registry's copy repaired: no other test meets the damage
    assert result["failed"] and result["error"]["kind"] == "corrupt", result
    assert result["error"]["member"] == "blobs/" + layer["digest"].replace(":", "-"), result["error"]
    for part in (layer["digest"], model.ref, f"registry {registry.host}", "no bundle was written"):
        assert part in result["msg"], (part, result["msg"])
    expected = "failed verification" if damage == "flipped" else f"sent {len(raw)} of its {layer['size']} bytes"
    assert expected in result["msg"], result["msg"]
    assert leftovers(tmp_path) == []


def test_playbook_exports_from_the_registry(exported, tmp_path, tiny_model, work_tree_collections):
    bundle = tmp_path / "site.tar"
    extra = {"bundle_path": str(bundle), "bundle_models": [tiny_model.ref], "bundle_source": "registry",
             "bundle_insecure": True}
    for changed in (1, 0):
        out = run_playbook(work_tree_collections, "bundle_export.yml", "local", extra)
        assert out.returncode == 0 and out.recap["changed"] == changed, out.output[-3000:]
    assert bundle.read_bytes() == exported["path"].read_bytes()
    out = run_playbook(work_tree_collections, "bundle_export.yml", "local", dict(extra, bundle_source="mirror"))
    assert out.returncode != 0 and "bundle_source is \"mirror\": set it to store" in out.said, out.output[-3000:]
