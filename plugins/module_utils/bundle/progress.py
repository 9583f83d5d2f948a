# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the action plugin prints while a bundle is exported, imported or pushed."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import (
    DownloadProgress,
    ProgressFile,
    human_bytes,
)


class BundleProgress:
    """Progress of one export, import or push, as the snapshots the action plugin prints (module_utils/progress.py).

    `report` is the module's ProgressFile.from_environment(); run without the action plugin (progress_interval
    0, check mode, async) it names no file and nothing is written. Each phase (checking the store's blobs,
    then writing) counts its own bytes against its own total, and its status names the blob it is at.
    """

    def __init__(self, report=None):
        self.report = report if report is not None else ProgressFile(None)
        self.what = ""
        self.phase = ""
        self.count = 0
        self.transfer = DownloadProgress(0)

    def start(self, blobs, phase=""):
        """A phase over [(digest, size)]: `phase` prefixes the status ("checking")."""
        self.transfer = DownloadProgress(sum(size for _d, size in blobs))
        self.phase = phase
        self.count = len(blobs)

    def blob(self, number, digest, size):
        words = [self.phase] if self.phase else []
        words.append(f"blob {number}/{self.count} {digest[:19]} ({human_bytes(size)})")
        self.transfer.status = " ".join(words)
        self.report.write(self.transfer.snapshot(self.what), force=True)

    def add(self, count):
        self.transfer.add(count)
        if self.report.due():
            self.report.write(self.transfer.snapshot(self.what))

    def waiting(self, holder, waited):
        """StoreLock's `waiting` callback: the line says whom the import waits for."""
        self.report.waiting_for_lock(self.what, holder, waited)

    def close(self):
        self.report.remove()
