# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A blob on its way into the store: its `-partial` file, the parts it is split into and how far each has come.

    blobs/sha256-<hex>-partial        the blob as far as it has come, at its full size (sparse)
    blobs/sha256-<hex>-partial.json   the parts and how far each has come, replaced atomically

A rerun after any interruption, a kill included, reads the `.json` and fetches only what each part still
misses. Ollama removes both files when it starts (they are not digest names), as it removes its own partials.
Who fills the parts, and when the blob is verified and committed, is blob_download.py's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os

from ansible_collections.aiplatform.ollama.plugins.module_utils.atomic_write import commit
from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError

PARTIAL_SUFFIX = "-partial"
PROGRESS_SUFFIX = ".json"
PROGRESS_FORMAT = "aiplatform.ollama.blob-parts/1"
MIB = 1 << 20

# Ollama 0.18 splits a blob into 16 parts of 100 MB to 1 GB (server/download.go). The cap is kept; the floor is
# lower so that a blob of a few hundred MB also gets every connection when the CDN caps each one.
DEFAULT_PARTS = 16
AUTO_PART_MIN = 16 * MIB
AUTO_PART_MAX = 1000 * 1000 * 1000
MIN_PART_SIZE = 1 * MIB
# the sidecar must stay small: a smaller part_size is raised to keep a blob within this many parts
MAX_PARTS_PER_BLOB = 4096
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DownloadError(CollectionError):
    """`kind` is one of digest, size, short, disk_full, io; what ollama_store.StoreError carries too."""

    def __init__(self, msg, kind="io", digest=None, found=None, path=None):
        super().__init__(msg, kind=kind, digest=digest, found=found, path=path)


def part_size_for(size, parts=DEFAULT_PARTS, part_size=None):
    """Bytes per part of a blob of `size`: `part_size` when set (raised to keep at most MAX_PARTS_PER_BLOB
    parts), otherwise size/parts within Ollama-like bounds."""
    if part_size:
        return max(int(part_size), -(-size // MAX_PARTS_PER_BLOB), 1)
    return min(max(-(-size // max(1, parts)), AUTO_PART_MIN), AUTO_PART_MAX)


def io_error(err, doing, path):
    if isinstance(err, OSError) and err.errno in _NO_SPACE:
        return DownloadError(f"no space left on the device {doing} ({err.strerror})", kind="disk_full", path=path)
    return DownloadError(f"{doing}: {getattr(err, 'strerror', None) or err}", kind="io", path=path)


class Part:
    """Bytes [offset, end) of a blob; [offset, offset + done) are written. One worker at a time runs it."""

    __slots__ = ("offset", "end", "done", "running", "received", "notified")

    def __init__(self, offset, end, done=0):
        self.offset = offset
        self.end = end
        self.done = done
        self.running = False
        self.received = 0  # bytes this run fetched for it
        self.notified = done

    @property
    def complete(self):
        return self.offset + self.done >= self.end

    def row(self):
        return [self.offset, self.end - self.offset, self.done]


def plan(size, ranges, part_size):
    """Parts for the byte ranges [(start, end, done)] of a blob: finished ranges stay one part each (adjacent
    ones merged), the rest is cut into parts of `part_size`."""
    parts = []
    for start, end, done in sorted(ranges):
        if done:
            last = parts[-1] if parts else None
            if last is not None and last.complete and last.end == start:
                last.end = start + done
                last.done = last.end - last.offset
            else:
                parts.append(Part(start, start + done, done))
        offset = start + done
        while offset < end:
            stop = min(end, offset + part_size)
            parts.append(Part(offset, stop))
            offset = stop
    if not size:
        return []
    return parts


class PartialBlob:
    """The `-partial` file of one blob and its `-partial.json` progress; `final` is the blob's path in the store."""

    def __init__(self, final, digest, size):
        self.final = final
        self.digest = digest
        self.size = size
        self.partial = final + PARTIAL_SUFFIX
        self.progress_path = self.partial + PROGRESS_SUFFIX
        self.fd = None

    def saved_ranges(self):
        """[(start, end, done)] an earlier run left: from the progress file, or the prefix an older single
        stream wrote (a `-partial` shorter than the blob, without progress file); [] when nothing is usable."""
        try:
            have = os.path.getsize(self.partial)
        except OSError:
            return []
        try:
            with open(self.progress_path, "rb") as handle:
                saved = json.loads(handle.read())
        except FileNotFoundError:
            return [(0, have, have), (have, self.size, 0)] if 0 < have < self.size else []
        except (OSError, ValueError):
            return []
        return self._valid(saved, have)

    def _valid(self, saved, have):
        if not isinstance(saved, dict) or saved.get("format") != PROGRESS_FORMAT:
            return []
        if saved.get("digest") != self.digest or saved.get("size") != self.size:
            return []
        ranges, offset = [], 0
        for row in saved.get("parts") or []:
            if not (isinstance(row, list) and len(row) == 3 and all(isinstance(v, int) for v in row)):
                return []
            start, length, done = row
            if start != offset or length <= 0 or not 0 <= done <= length or start + done > have:
                return []
            ranges.append((start, start + length, done))
            offset = start + length
        return ranges if offset == self.size else []

    def done_bytes(self):
        return sum(done for _s, _e, done in self.saved_ranges())

    def open(self, ranges, fresh):
        """Open (create) the `-partial` file at the blob's full size, emptied first when `fresh`; `ranges` are
        recorded before, so that the file never holds more than its progress file says."""
        try:
            self.fd = os.open(self.partial, os.O_RDWR | os.O_CREAT, 0o644)
            if fresh:
                os.ftruncate(self.fd, 0)
        except OSError as err:
            raise io_error(err, f"opening {self.partial}", self.partial) from err
        self.checkpoint([Part(s, e, d) for s, e, d in ranges])
        try:
            os.ftruncate(self.fd, self.size)
        except OSError as err:
            raise io_error(err, f"sizing {self.partial}", self.partial) from err

    def write(self, view, offset):
        while len(view):
            try:
                written = os.pwrite(self.fd, view, offset)
            except OSError as err:
                raise io_error(err, f"writing {self.partial}", self.partial) from err
            view, offset = view[written:], offset + written

    def checkpoint(self, parts):
        """Replace the progress file atomically (a kill between two leaves the older one, never half of one)."""
        body = json.dumps(
            {"format": PROGRESS_FORMAT, "digest": self.digest, "size": self.size, "parts": [p.row() for p in parts]},
            separators=(",", ":"),
        ).encode()
        tmp = self.progress_path + ".tmp"
        try:
            with open(tmp, "wb") as handle:
                handle.write(body)
            os.replace(tmp, self.progress_path)
        except OSError as err:
            raise io_error(err, f"writing {self.progress_path}", self.progress_path) from err

    def commit(self):
        """Make the verified blob durable and visible: fsync, rename over the final name, drop the progress."""
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = None
            # the -partial file is the temporary file here: written in parts, resumed, verified before this
            commit(self.partial, self.final)
        except OSError as err:
            raise io_error(err, f"renaming {self.partial}", self.final) from err
        with contextlib.suppress(OSError):
            os.remove(self.progress_path)

    def close(self):
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def discard(self):
        """Remove what was written: the content is known to be wrong, resuming would keep it."""
        self.close()
        for path in (self.partial, self.progress_path, self.progress_path + ".tmp"):
            with contextlib.suppress(OSError):
                os.remove(path)
