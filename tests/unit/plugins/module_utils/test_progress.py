"""The download progress both modules report: byte counting for a module's own downloads."""

from __future__ import annotations

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import DownloadProgress, progress_line


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_download_progress_counts_bytes_against_the_total():
    clock = Clock()
    progress = DownloadProgress(1000, clock=clock)
    progress.status = "blob 1/2 sha256:abcdef012345 (1000 B)"
    clock.now += 1
    progress.add(300)
    clock.now += 1
    progress.add(200)
    snap = progress.snapshot("m:t")
    assert snap["completed"] == 500 and snap["total"] == 1000 and snap["percent"] == 50.0
    assert progress.rate == pytest.approx(200.0) and snap["eta_seconds"] == pytest.approx(2.5)
    assert progress_line(snap).startswith("m:t:  50.0% 500 B / 1000 B at 200 B/s, ETA 2s (blob 1/2")


def test_download_progress_never_passes_the_total():
    # a registry that ignores a range request sends a resumed blob again from its start
    progress = DownloadProgress(100, clock=Clock())
    progress.add(150)
    assert progress.completed == 100 and progress.transferred == 150 and progress.eta == 0.0
