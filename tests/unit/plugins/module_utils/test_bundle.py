"""Model bundles on temporary directories: export/import round trip, idempotence, and every kind of
member an import must refuse, each leaving the target store exactly as it was.

The malicious bundles are built with the tarfile module from a valid export, so that each one is
wrong in exactly one way.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_download import DownloadFailed, StreamSource
from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_partial import PARTIAL_SUFFIX, PROGRESS_SUFFIX
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.export import export_bundle
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.format import (
    FORMAT,
    INDEX,
    BundleError,
    parse_index,
    unsafe_name,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.importer import import_bundle
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.progress import BundleProgress
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore, descriptors
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import ProgressFile
from tests.bundle_tars import members_of, write_tar
from tests.file_tree import tree
from tests.module_runner import run_module

MODEL = "localhost:5000/library/tiny:v1"
OTHER = "localhost:5000/team/other:v2"


def blob(content: bytes, media_type="application/vnd.ollama.image.model") -> dict:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(content).hexdigest(), "size": len(content)}


def seed(root: Path, name: str, *layers: bytes) -> dict:
    """Write a complete model into the store at root, as ollama_store_model does."""
    config_bytes = json.dumps({"model_format": "gguf", "name": name}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": blob(config_bytes, "application/vnd.docker.container.image.v1+json"),
                "layers": [blob(content) for content in layers]}
    contents = {manifest["config"]["digest"]: config_bytes}
    contents.update({d["digest"]: c for d, c in zip(manifest["layers"], layers)})
    store = OllamaStore(root)
    for digest, size in descriptors(manifest):
        store.download_blob(digest, size, lambda offset, d=digest: (io.BytesIO(contents[d][offset:]), offset))
    store.write_manifest(ModelRef.parse(name), manifest)
    return manifest


@pytest.fixture
def source(tmp_path) -> Path:
    root = tmp_path / "source"
    seed(root, MODEL, b"weights " * 4096, b"{{ .Prompt }}")
    return root


@pytest.fixture
def bundle(tmp_path, source) -> Path:
    path = tmp_path / "tiny.tar"
    export_bundle(str(source), [MODEL], str(path))
    return path






def first_blob(members: list, media_type="application/vnd.ollama.image.model") -> str:
    index = json.loads(next(d for m, d in members if m.name == INDEX))
    manifest = json.loads(next(d for m, d in members if m.name.startswith("manifests/")))
    digest = next(layer["digest"] for layer in manifest["layers"] if layer["mediaType"] == media_type)
    assert any(b["digest"] == digest for b in index["blobs"])
    return "blobs/" + digest.replace(":", "-")


# -- round trip -----------------------------------------------------------------------------------


def test_export_then_import_reproduces_the_store(tmp_path, source, bundle):
    target = tmp_path / "target"
    result = import_bundle(str(bundle), str(target))
    assert result["changed"] and result["skipped"] == []
    assert [m["action"] for m in result["models"]] == ["imported"]
    assert tree(target) == tree(source)  # manifest byte for byte, every blob, no temporary file
    again = import_bundle(str(bundle), str(target))
    assert not again["changed"] and again["blobs"] == [] and again["bytes_written"] == 0
    assert [m["action"] for m in again["models"]] == ["unchanged"]
    assert sorted(again["skipped"]) == sorted(result["blobs"])


def test_bundle_layout_and_index(bundle, source):
    members = members_of(bundle)
    names = [m.name for m, _d in members]
    assert names[0] == INDEX  # first, so a reader knows what to expect before any content
    assert all(m.isreg() and m.mode == 0o644 and m.mtime == 0 for m, _d in members)
    index = json.loads(members[0][1])
    assert index["format"] == FORMAT and index["version"] == 1
    (model,) = index["models"]
    assert model["name"] == MODEL and model["manifest"] == "manifests/localhost:5000/library/tiny/v1"
    manifest_file = source / model["manifest"]
    assert model["digest"] == "sha256:" + hashlib.sha256(manifest_file.read_bytes()).hexdigest()
    assert {b["digest"] for b in model["blobs"]} == {b["digest"] for b in index["blobs"]}
    assert sorted(names[1:]) == sorted([model["manifest"]] + ["blobs/" + b["digest"].replace(":", "-")
                                                               for b in index["blobs"]])


def test_export_is_idempotent_and_deterministic(tmp_path, source, bundle):
    before = bundle.stat().st_mtime_ns, bundle.read_bytes()
    again = export_bundle(str(source), [MODEL, "localhost:5000/library/tiny:v1"], str(bundle))
    assert not again["changed"] and again["bytes_written"] == 0
    assert (bundle.stat().st_mtime_ns, bundle.read_bytes()) == before
    copy = tmp_path / "copy.tar"
    assert export_bundle(str(source), [MODEL], str(copy))["bytes_written"] == copy.stat().st_size
    assert copy.read_bytes() == bundle.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith("-partial")] == []


def test_export_check_mode_writes_nothing(tmp_path, source):
    path = tmp_path / "planned.tar"
    result = export_bundle(str(source), [MODEL], str(path), check_mode=True)
    assert result["changed"] and len(result["blobs"]) == 3 and not path.exists()
    assert os.listdir(tmp_path) == ["source"]


def test_export_refuses_missing_incomplete_and_foreign_files(tmp_path, source):
    with pytest.raises(BundleError, match="is not in the store .* seed it first") as err:
        export_bundle(str(source), ["localhost:5000/library/nope:v1"], str(tmp_path / "x.tar"))
    assert err.value.kind == "missing"
    foreign = tmp_path / "notes.txt"
    foreign.write_text("keep me")
    with pytest.raises(BundleError, match="is not a valid model bundle: it is not replaced"):
        export_bundle(str(source), [MODEL], str(foreign))
    assert foreign.read_text() == "keep me"
    blob_file = next((source / "blobs").iterdir())
    blob_file.write_bytes(blob_file.read_bytes()[:-1])
    with pytest.raises(BundleError, match="is incomplete"):
        export_bundle(str(source), [MODEL], str(tmp_path / "y.tar"))
    assert not (tmp_path / "y.tar").exists()


def test_export_refuses_a_corrupt_store_blob_and_leaves_no_file(tmp_path, source):
    manifest = json.loads(next((source / "manifests").rglob("v1")).read_bytes())
    layer = source / "blobs" / manifest["layers"][0]["digest"].replace(":", "-")
    raw = bytearray(layer.read_bytes())
    raw[10] ^= 0xFF  # same size, other content: only the hash can tell
    layer.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="is corrupt: its content has sha256") as err:
        export_bundle(str(source), [MODEL], str(tmp_path / "z.tar"))
    assert err.value.kind == "corrupt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]


def test_import_check_mode_writes_nothing_but_verifies(tmp_path, bundle):
    target = tmp_path / "target"
    result = import_bundle(str(bundle), str(target), check_mode=True)
    assert result["changed"] and len(result["blobs"]) == 3 and not target.exists()
    members = members_of(bundle)
    name = first_blob(members)
    corrupt = [(m, bytes(b ^ 1 for b in d) if m.name == name else d) for m, d in members]
    with pytest.raises(BundleError, match="has sha256"):
        import_bundle(str(write_tar(tmp_path / "bad.tar", corrupt)), str(target), check_mode=True)


def test_import_replaces_a_damaged_store_blob(tmp_path, bundle):
    target = tmp_path / "target"
    import_bundle(str(bundle), str(target))
    good = tree(target)
    victim = next(p for p in (target / "blobs").iterdir() if p.stat().st_size > 1000)
    victim.write_bytes(b"\0" * victim.stat().st_size)
    result = import_bundle(str(bundle), str(target))
    assert result["changed"] and result["blobs"] == [victim.name.replace("-", ":", 1)]
    assert tree(target) == good


def test_import_adds_to_a_store_with_other_models(tmp_path, bundle):
    target = tmp_path / "target"
    seed(target, OTHER, b"weights " * 4096, b"other template")  # shares the model layer
    result = import_bundle(str(bundle), str(target))
    assert len(result["skipped"]) == 1 and len(result["blobs"]) == 2
    assert (target / "manifests/localhost:5000/team/other/v2").is_file()
    assert (target / "manifests/localhost:5000/library/tiny/v1").is_file()


# -- refusals -------------------------------------------------------------------------------------


def _index(members):
    return json.loads(next(d for m, d in members if m.name == INDEX))


def _with_index(members, index):
    body = json.dumps(index).encode()
    return [(m, body if m.name == INDEX else d) for m, d in members]


def _link(kind, name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _special(kind, name):
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def _flip(name):
    return lambda members: [(m, bytes(b ^ 1 for b in d) if m.name == name else d) for m, d in members]


EDITS = {
    # name: (edit(members, blob_name) -> members, kind, what the message says)
    "dotdot": (lambda ms, b: ms + [(tarfile.TarInfo("blobs/../../evil"), b"x")], "unsafe", "'..' path component"),
    "absolute": (lambda ms, b: ms + [(tarfile.TarInfo("/tmp/evil"), b"x")], "unsafe", "absolute path"),
    "symlink": (lambda ms, b: [m for m in ms if m[0].name != b] + [_link(tarfile.SYMTYPE, b, "/etc/passwd")],
                "unsafe", "symbolic link"),
    "hardlink": (lambda ms, b: [m for m in ms if m[0].name != b] + [_link(tarfile.LNKTYPE, b, INDEX)],
                 "unsafe", "hard link"),
    "device": (lambda ms, b: ms + [_special(tarfile.CHRTYPE, "blobs/null")], "unsafe", "device file"),
    "fifo": (lambda ms, b: ms + [_special(tarfile.FIFOTYPE, "blobs/pipe")], "unsafe", "FIFO"),
    "unexpected": (lambda ms, b: ms + [(tarfile.TarInfo("blobs/sha256-" + "0" * 64), b"x")], "invalid",
                   "not named in the index"),
    "unexpected_dir": (lambda ms, b: ms + [(_special(tarfile.DIRTYPE, "extra")[0], None)], "invalid",
                       "directory the index does not account for"),
    "duplicate": (lambda ms, b: ms + [m for m in ms if m[0].name == b], "invalid", "appears twice"),
    "missing": (lambda ms, b: [m for m in ms if m[0].name != b], "invalid", "missing from the file"),
    "checksum": (lambda ms, b: _flip(b)(ms), "corrupt", "damaged in transfer"),
    "size": (lambda ms, b: [(m, d + b"x" if m.name == b else d) for m, d in ms], "corrupt", "the index says"),
    "manifest": (lambda ms, b: _flip(next(m.name for m, _d in ms if m.name.startswith("manifests/")))(ms),
                 "corrupt", "has sha256"),
    "format": (lambda ms, b: _with_index(ms, dict(_index(ms), format="something-else")), "invalid",
               "not the index of a model bundle"),
    "version": (lambda ms, b: _with_index(ms, dict(_index(ms), version=2)), "invalid", "format version 2"),
    "index_path": (lambda ms, b: _with_index(ms, dict(_index(ms), models=[dict(_index(ms)["models"][0],
                                                                               manifest="../../etc/x")])),
                   "invalid", "puts the manifest"),
    "no_index": (lambda ms, b: [m for m in ms if m[0].name != INDEX], "invalid", "has no index.json"),
}


@pytest.mark.parametrize("case", sorted(EDITS))
@pytest.mark.parametrize("store_state", ["populated", "absent"])
def test_import_refuses_and_leaves_the_store_unchanged(tmp_path, bundle, case, store_state):
    edit, kind, says = EDITS[case]
    members = members_of(bundle)
    bad = write_tar(tmp_path / f"{case}.tar", edit(members, first_blob(members)))
    target = tmp_path / "stores" / "target"
    if store_state == "populated":
        seed(target, OTHER, b"other weights", b"other template")
    before, outside = tree(target), tree(tmp_path / "stores")
    with pytest.raises(BundleError) as err:
        import_bundle(str(bad), str(target))
    assert err.value.kind == kind and says in str(err.value) and "nothing was written" in str(err.value), err.value
    assert tree(target) == before and tree(tmp_path / "stores") == outside
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()
    with pytest.raises(BundleError):
        import_bundle(str(bad), str(target), check_mode=True)


def test_not_a_tar_and_a_truncated_copy_are_refused(tmp_path, bundle):
    target = tmp_path / "target"
    text = tmp_path / "notes.tar"
    text.write_text("not a tar file at all " * 100)
    with pytest.raises(BundleError, match="is not an uncompressed tar file"):
        import_bundle(str(text), str(target))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    with pytest.raises(BundleError, match="cut short|damaged or truncated|missing from the file"):
        import_bundle(str(cut), str(target))
    with pytest.raises(BundleError, match="does not exist"):
        import_bundle(str(tmp_path / "nowhere.tar"), str(target))
    assert not target.exists()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("index.json", None),
        ("manifests/localhost:5000/library/tiny/v1", None),
        ("blobs/", None),
        ("/etc/passwd", "absolute"),
        ("C:/x", "absolute"),
        ("blobs/../x", "'..'"),
        ("..", "'..'"),
        ("./index.json", "'.'"),
        ("blobs//x", "empty"),
        ("blobs\\x", "backslash"),
        ("", "empty name"),
    ],
)
def test_unsafe_name(name, why):
    found = unsafe_name(name)
    assert (found is None) if why is None else (why in found), found


# -- the store lock, a seeder's leftovers, progress -----------------------------------------------


def interrupted_seed(root: Path, content: bytes) -> tuple[Path, Path]:
    """What a seed whose download broke off halfway leaves: the blob's -partial file and its parts' progress.

    The store's own downloader gets a stream that ends at half the blob, as a connection that drops does."""
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    half = len(content) // 2
    source = StreamSource(lambda offset: (io.BytesIO(content[offset:half]), offset), len(content))
    with pytest.raises(DownloadFailed):
        OllamaStore(root).download_blobs([(digest, len(content), source)], retries=0, parts=1, max_connections=1)
    partial = root / "blobs" / (digest.replace(":", "-") + PARTIAL_SUFFIX)
    progress = Path(str(partial) + PROGRESS_SUFFIX)
    assert partial.is_file() and progress.is_file()
    assert OllamaStore(root).partial_bytes(digest, len(content)) == half
    return partial, progress


def test_import_supersedes_a_seeders_leftovers_of_its_blobs_and_keeps_the_others(tmp_path, source, bundle):
    target = tmp_path / "target"
    partial, progress = interrupted_seed(target, b"weights " * 4096)  # the bundle's model layer
    other_partial, other_progress = interrupted_seed(target, b"another model's layer " * 4096)
    kept = other_partial.read_bytes(), other_progress.read_bytes()
    result = import_bundle(str(bundle), str(target))
    assert result["changed"] and len(result["blobs"]) == 3, result
    # the blob is in place and whole, so no seeder would ever resume its leftovers: they are gone
    assert not partial.exists() and not progress.exists()
    assert (other_partial.read_bytes(), other_progress.read_bytes()) == kept
    without_leftovers = [e for e in tree(target) if not e[0].startswith(f"blobs/{other_partial.name}")]
    assert without_leftovers == tree(source)
    assert not import_bundle(str(bundle), str(target))["changed"]


def test_export_reads_manifests_and_carries_no_partial_file(tmp_path, source):
    interrupted_seed(source, b"a layer still downloading " * 4096)
    path = tmp_path / "with-partials.tar"
    export_bundle(str(source), [MODEL], str(path))
    names = sorted(m.name for m, _d in members_of(path))
    index = _index(members_of(path))
    expected = [INDEX, index["models"][0]["manifest"]] + ["blobs/" + b["digest"].replace(":", "-")
                                                          for b in index["blobs"]]
    assert names == sorted(expected)


def test_import_waits_for_the_store_lock_then_fails_naming_its_holder(tmp_path, bundle):
    target = tmp_path / "target"
    seed(target, OTHER, b"other weights", b"other template")
    before = tree(target)
    # flock conflicts between two opens of the lock file, within one process too
    with OllamaStore(target).lock(holder="a seed of team/other"):
        with pytest.raises(BundleError) as err:
            import_bundle(str(bundle), str(target), lock_timeout=0.3)
        assert err.value.kind == "locked"
        assert "a seed of team/other" in str(err.value) and f"pid {os.getpid()}" in str(err.value), err.value
        assert "lock_timeout" in str(err.value) and "nothing was written" in str(err.value), err.value
    assert tree(target) == before
    assert import_bundle(str(bundle), str(target), lock_timeout=0.3)["changed"]


def test_progress_snapshots_count_every_blob_byte(tmp_path, source, bundle):
    sizes = sum(b["size"] for b in _index(members_of(bundle))["blobs"])
    snapshots = {}
    for what, call in (
        ("export", lambda p: export_bundle(str(source), [MODEL], str(tmp_path / "again.tar"), progress=p)),
        ("import", lambda p: import_bundle(str(bundle), str(tmp_path / "target"), progress=p)),
        ("check", lambda p: import_bundle(str(bundle), str(tmp_path / "target"), progress=p)),
    ):
        path = tmp_path / f"{what}.progress.json"
        call(BundleProgress(ProgressFile(str(path), every=0)))
        snapshots[what] = json.loads(path.read_text())
    for what in ("export", "import"):
        snap = snapshots[what]
        assert (snap["completed"], snap["total"], snap["percent"]) == (sizes, sizes, 100.0), snap
        assert snap["model"] == "localhost:5000/library/tiny:v1" and snap["status"].startswith("blob 3/3 sha256:")
    # a second import re-hashes what the store holds, and says so
    assert snapshots["check"]["status"].startswith("checking blob 3/3") and snapshots["check"]["completed"] == sizes


def test_a_negative_lock_timeout_is_refused_before_anything_is_written(tmp_path, bundle):
    target = tmp_path / "target"
    result = run_module("ollama_bundle", dict(state="imported", path=str(bundle), store=str(target), lock_timeout=-3))
    assert result["failed"] and "lock_timeout must be 0 or more seconds, got -3" in result["msg"], result
    assert "leave it unset" in result["msg"] and not target.exists()


# -- export straight from the registry: what is refused before any request -------------------------
# (the export itself runs against a real registry in tests/integration/model_cache/test_bundle_roundtrip.py)


def test_a_registry_login_for_models_of_two_registries_is_refused_before_any_request(tmp_path):
    # nothing listens on these ports: a request would fail with "cannot reach", not this
    args = dict(state="exported", path=str(tmp_path / "b.tar"), registry_username="u", registry_password="p",
                models=["127.0.0.1:9/library/tiny:v1", "localhost:9/team/other:v2"], insecure=True)
    result = run_module("ollama_bundle", args)
    assert result["failed"] and result["error"]["kind"] == "invalid", result
    assert ("registry_username and registry_password are for one registry, but models lists models of "
            "127.0.0.1:9, localhost:9: export the models of each registry in a task of its own") in result["msg"]
    assert list(tmp_path.iterdir()) == []


def test_a_push_registry_with_a_registry_export_is_refused(tmp_path):
    args = dict(state="exported", path=str(tmp_path / "b.tar"), registry="127.0.0.1:9", models=[MODEL])
    result = run_module("ollama_bundle", args)
    assert result["failed"] and "registry '127.0.0.1:9' is the registry to push to (state=pushed)" in result["msg"]
    assert "remove registry" in result["msg"] and list(tmp_path.iterdir()) == []


def test_a_bad_model_name_fails_a_registry_export_before_any_request(tmp_path):
    result = run_module("ollama_bundle", dict(state="exported", path=str(tmp_path / "b.tar"),
                                              models=["127.0.0.1:9/library/bad name:v1"]))
    assert result["failed"] and result["error"]["kind"] == "invalid", result
    assert "'127.0.0.1:9/library/bad name:v1'" in result["msg"] and list(tmp_path.iterdir()) == []


def test_exporting_without_store_or_models_names_what_is_missing(tmp_path):
    result = run_module("ollama_bundle", dict(state="exported", path=str(tmp_path / "b.tar")))
    assert result["failed"] and "models" in result["msg"], result
    result = run_module("ollama_bundle", dict(state="exported", path=str(tmp_path / "b.tar"), models=[]))
    assert result["failed"] and "models is empty" in result["msg"], result
    assert list(tmp_path.iterdir()) == []


def test_an_index_digest_with_a_trailing_newline_is_refused():
    digest = "sha256:" + "b" * 64
    index = {"format": FORMAT, "version": 1, "blobs": [{"digest": digest + "\n", "size": 1}], "models": []}
    with pytest.raises(BundleError, match="not sha256:<64 lower-case hex digits>"):
        parse_index(json.dumps(index).encode(), "bundle.tar")
