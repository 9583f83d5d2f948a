# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Progress of a long download, as a module on the managed host reports it to its action plugin.

A module cannot print while it runs. It keeps the latest snapshot (bytes, percentage, rate, ETA)
in a JSON file (ProgressFile); the action plugin of the module reads that file while the module
runs as an asynchronous job and prints `progress_line` of it. The action plugin names the file in
the module's environment (PROGRESS_FILE_ENV), not as a module option: it is a channel between the
two halves of one task, nothing a user sets. The totals come from a Transfer
subclass: PullProgress (ollama_api) counts the layers of an `/api/pull` stream, DownloadProgress
the bytes a module downloads itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections import deque


class Transfer:
    """Rate and ETA over a transfer whose `total`, `completed` and `transferred` a subclass provides.

    The rate is over the last `window` seconds, so the ETA follows the current speed.
    """

    def __init__(self, clock=time.monotonic, window=10.0):
        self.clock = clock
        self.started = clock()
        self.status = "starting"
        self.window = window
        self._samples = deque()

    total = 0
    completed = 0
    transferred = 0

    def sample(self):
        """Record the bytes moved so far; call after every change."""
        now = self.clock()
        self._samples.append((now, self.transferred))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window:
            self._samples.popleft()

    @property
    def elapsed(self):
        return self.clock() - self.started

    @property
    def rate(self):
        """Bytes per second over the recent window (over the whole transfer until the window fills)."""
        if len(self._samples) >= 2:
            (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
            if t1 - t0 > 0.5:
                return (b1 - b0) / (t1 - t0)
        elapsed = self.elapsed
        return self.transferred / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self):
        rate = self.rate
        remaining = self.total - self.completed
        if remaining <= 0:
            return 0.0
        return remaining / rate if rate > 0 else None

    def snapshot(self, model=None):
        total = self.total
        return {
            "model": model,
            "status": self.status,
            "completed": self.completed,
            "total": total,
            "transferred": self.transferred,
            "percent": round(100.0 * self.completed / total, 1) if total else 0.0,
            "bytes_per_second": round(self.rate, 1),
            "eta_seconds": None if self.eta is None else round(self.eta, 1),
            "elapsed_seconds": round(self.elapsed, 1),
        }


class DownloadProgress(Transfer):
    """Bytes a module downloads itself, against the `total` it knows it has to download."""

    def __init__(self, total, clock=time.monotonic, window=10.0):
        super().__init__(clock=clock, window=window)
        self._total = int(total)
        self._done = 0

    def add(self, count):
        self._done += count
        self.sample()

    @property
    def total(self):
        return self._total

    @property
    def completed(self):
        # a server that ignores a range request sends a resumed blob again from its start
        return min(self._done, self._total)

    @property
    def transferred(self):
        return self._done


PROGRESS_FILE_ENV = "AIPLATFORM_OLLAMA_PROGRESS_FILE"


class ProgressFile:
    """The latest progress snapshot as JSON in one file, replaced atomically at most once a second."""

    def __init__(self, path, every=1.0):
        self.path = path
        self.every = every
        self._last = 0.0

    @classmethod
    def from_environment(cls, every=1.0):
        """The file the action plugin named for this run; writes nothing when it named none."""
        return cls(os.environ.get(PROGRESS_FILE_ENV) or None, every=every)

    def write(self, snapshot, force=False):
        if not self.path:
            return
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        directory = os.path.dirname(self.path) or "."
        try:
            fd, tmp = tempfile.mkstemp(prefix=".progress-", dir=directory)
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(snapshot))
            os.replace(tmp, self.path)
        except OSError:
            # progress is a courtesy; the transfer must not fail because it cannot be shown
            pass

    def waiting_for_lock(self, model, holder, waited):
        """The line while a store writer waits for another's lock (StoreLock's `waiting` callback)."""
        self.write({"model": model, "status": f"waiting {int(waited)}s for the store lock ({holder})"})

    def due(self):
        """Whether write() would write now: spares building a snapshot for every chunk of a download."""
        return bool(self.path) and time.monotonic() - self._last >= self.every

    def remove(self):
        if self.path:
            with contextlib.suppress(OSError):
                os.remove(self.path)


def human_bytes(count):
    value = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024.0
    return f"{int(count)} B"


def human_seconds(seconds):
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m{rest:02d}s"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m"


def progress_line(snap):
    """One human line for a progress snapshot: what the action plugins print."""
    if not snap.get("total"):
        return "{}: {}".format(snap.get("model") or "pull", snap.get("status") or "starting")
    return "{}: {:5.1f}% {} / {} at {}/s, ETA {} ({})".format(
        snap.get("model") or "pull",
        snap.get("percent") or 0.0,
        human_bytes(snap.get("completed")),
        human_bytes(snap.get("total")),
        human_bytes(snap.get("bytes_per_second")),
        human_seconds(snap.get("eta_seconds")),
        snap.get("status") or "",
    )
