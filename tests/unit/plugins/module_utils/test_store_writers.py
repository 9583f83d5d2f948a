"""Which processes hold a store's partial downloads open: real child processes holding real files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.store_writers import describe, partial_writers

HOLD = "import sys, time; f = open(sys.argv[1], 'ab'); print('open', flush=True); time.sleep(60)"


@pytest.fixture
def holding(tmp_path):
    """Start a process that keeps a file open; stopped when the test ends."""
    started = []

    def hold(path):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "open"
        return proc

    yield hold
    for proc in started:
        proc.kill()
        proc.wait()


def test_a_process_holding_a_partial_download_is_named(tmp_path, holding):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    partial = blobs / ("sha256-" + "a" * 64 + "-partial")
    proc = holding(partial)
    command = os.path.basename(sys.executable)[:15]  # the kernel's comm: the executed file's name, 15 bytes
    found = partial_writers(blobs)
    assert found == [(proc.pid, command, str(partial))]
    assert describe(found) == f"{command} (pid {proc.pid}) writes {partial}"


def test_complete_blobs_other_stores_and_this_process_do_not_count(tmp_path, holding):
    blobs, elsewhere = tmp_path / "blobs", tmp_path / "blobs-other"
    blobs.mkdir()
    elsewhere.mkdir()
    holding(blobs / ("sha256-" + "b" * 64))  # a loaded model's file: its manifest keeps it from any prune
    holding(elsewhere / ("sha256-" + "c" * 64 + "-partial"))  # another store, whose name starts alike
    with open(blobs / ("sha256-" + "d" * 64 + "-partial"), "ab"):  # the module itself
        assert partial_writers(blobs) == []


def test_without_proc_nothing_is_seen(tmp_path):
    assert partial_writers(tmp_path / "blobs", proc=str(tmp_path / "no-proc")) == []
    assert os.path.isdir("/proc")
