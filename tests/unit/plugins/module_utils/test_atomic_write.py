"""atomic_write: the one way the store's files and a bundle are replaced."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.atomic_write import (
    commit,
    write_atomically,
    write_temp,
)


def test_the_file_is_replaced_whole_and_readable_by_all(tmp_path):
    target = tmp_path / "manifest"
    target.write_bytes(b"old")
    old_umask = os.umask(0o077)
    try:
        write_atomically(str(target), b"new", "manifest-", suffix="-partial")
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest"]


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "bundle.tar"
    target.write_bytes(b"old")

    def write(handle):
        handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(target), write, ".bundle.tar.", suffix="-partial")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.tar"]


def test_the_temporary_file_may_live_elsewhere_and_is_committed_later(tmp_path):
    blobs, manifests = tmp_path / "blobs", tmp_path / "manifests"
    blobs.mkdir()
    manifests.mkdir()
    tmp = write_temp(str(blobs), lambda handle: handle.write(b"body"), "manifest-", suffix="-partial")
    assert os.path.basename(tmp).startswith("manifest-") and tmp.endswith("-partial")
    assert not (manifests / "tag").exists()  # nothing visible before the commit
    commit(tmp, str(manifests / "tag"))
    assert (manifests / "tag").read_bytes() == b"body"
    assert list(blobs.iterdir()) == []


def test_a_failed_rename_removes_the_temporary_file(tmp_path):
    (tmp_path / "target").mkdir()  # a directory cannot be replaced by a file
    with pytest.raises(OSError):
        write_atomically(str(tmp_path / "target"), b"x", "t-")
    assert [p.name for p in tmp_path.iterdir()] == ["target"]
