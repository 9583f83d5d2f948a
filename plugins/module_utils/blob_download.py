# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Blobs downloaded in parallel ranged parts, resumable part by part, verified before they become visible.

A blob is split into parts (as `ollama pull` splits one: about 16, of at most 1 GB each); each part is one
ranged GET whose bytes go with os.pwrite to their offset in the blob's preallocated `-partial` file. Many
connections at once are what a CDN that caps each connection, or a long-haul link, needs. The `-partial`
file, the parts and their progress, from which a rerun resumes, are blob_partial.py's.

The sha256 of the whole blob is computed in order by one hasher thread per blob, which reads back what the
parts have written contiguously from the start while the rest downloads; only once it matches is the
`-partial` file renamed into place. A server that does not honour Range (200 instead of 206, or no
Content-Range) gets one plain stream instead. Memory stays bounded: one buffer per connection and per hasher.

Where the bytes come from is a `source`: `source.open(start, end)` returns `(stream, begins, stops)`, a
readable stream (readinto) of bytes [begins, stops) of the blob, which covers [start, end) when the server
honoured the range and is the whole blob from 0 when it did not. `source.retryable(err)`, when the source has
it, says whether a failed attempt may be tried again; it is the only code that knows HTTP
(ollama_registry.RegistryBlobSource).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import threading
import time

from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_partial import (
    DEFAULT_PARTS,
    MIB,
    DownloadError,
    Part,
    PartialBlob,
    io_error,
    part_size_for,
    plan,
)

DEFAULT_MAX_CONNECTIONS = 16
# small enough that progress is recorded as the bytes come (a kill loses at most this per connection), large
# enough that a fast link costs few system calls; buffers are reused, so memory does not grow with the model
READ_BUFFER = 256 << 10
HASH_BUFFER = 1 * MIB
# the hasher wakes once this much more is contiguous (or a part completes): cheap for the GIL
HASH_STEP = 8 * MIB
# progress reaches the sidecar this often: what a kill can cost a rerun (bytes received since)
CHECKPOINT_SECONDS = 0.1
# attempts of a part that make no progress; an attempt that moved bytes starts the count again
RETRIES = 4
BACKOFF_SECONDS = (1, 2, 4, 8)


class DownloadFailed(Exception):
    """One blob could not be downloaded: `cause` is the error (a DownloadError or the source's own), `digest`
    the blob, `transferred` the bytes this run received in all. Progress is kept for a rerun."""

    def __init__(self, digest, size, cause, transferred):
        super().__init__(str(cause))
        self.digest = digest
        self.size = size
        self.cause = cause
        self.transferred = transferred


class _Short(OSError):
    """The stream ended before the bytes it was asked for."""


class _Cancelled(Exception):
    pass


def _fdatasync(fd):
    with contextlib.suppress(OSError):
        getattr(os, "fdatasync", os.fsync)(fd)  # macOS has no fdatasync


def _pread_into(fd, view, offset):
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    data = os.pread(fd, len(view), offset)  # where there is no preadv (older macOS): one copy more
    view[: len(data)] = data
    return len(data)


class BlobJob:
    """One blob of a Downloader run: its parts, the hasher, and how it ended."""

    def __init__(self, downloader, digest, size, final, source):
        self.downloader = downloader
        self.digest = digest
        self.size = size
        self.source = source
        self.blob = PartialBlob(final, digest, size)
        self.lock = threading.Condition()
        self.parts = []
        self.mode = "probe"  # until the first answer says whether the server honours Range
        self.inflight = 0
        self.started = False
        self.committed = False
        self.error = None
        self.resumed = False
        self.fresh_retry = False
        self.retired = 0  # bytes received for parts that were replaced
        self.saved = None  # rows at the last checkpoint
        self.hasher = None
        self.syncer = None
        self.committing = False

    # -- set-up -------------------------------------------------------------------------------

    def prepare(self):
        ranges = self.blob.saved_ranges()
        self.resumed = any(done for _s, _e, done in ranges)
        if not self.resumed:
            ranges = [(0, self.size, 0)] if self.size else []
        self.blob.open(ranges, fresh=not self.resumed)
        self.parts = plan(self.size, ranges, self.downloader.part_size(self.size))
        self.saved = [p.row() for p in self.parts]
        if not self.parts:
            self.mode = "ranged"
            self._start_hasher()

    def restart_fresh(self):
        """Start the blob again from nothing (its resumed content did not verify)."""
        self.fresh_retry = True
        if self.syncer is not None:
            self.syncer.join()
        self.blob.discard()
        self.retired += self.received()
        self.mode, self.error, self.hasher, self.syncer, self.committing = "probe", None, None, None, False
        self.prepare()

    # -- scheduling (under the downloader's lock) -----------------------------------------------

    def next_part(self):
        if self.error or self.committed:
            return None
        if self.mode == "probe" and self.inflight:
            return None
        for part in self.parts:
            if not part.running and not part.complete:
                return part
        return None

    def received(self):
        return self.retired + sum(p.received for p in self.parts)

    def checkpoint(self):
        with self.lock:
            if self.committed or self.blob.fd is None:
                return
            rows = [p.row() for p in self.parts]
            if rows == self.saved:
                return
            self.blob.checkpoint(self.parts)
            self.saved = rows

    # -- a worker ---------------------------------------------------------------------------------

    def fetch(self, held, buffer, cancel):
        """Fetch what the part in `held` ([part]) misses, retrying while attempts make progress; raises what
        ends it. A server that ignores the range swaps the part for the whole blob in `held`."""
        failures = 0
        while True:
            before = held[0].done
            try:
                self._attempt(held, buffer, cancel)
                return
            except (_Cancelled, DownloadError):
                raise
            except Exception as err:
                if not self._retryable(err):
                    raise
                if held[0].done > before:
                    failures = 0  # it moved bytes: the connection broke, try again at once from there
                    continue
                failures += 1
                if failures > self.downloader.retries:
                    raise
                if cancel.wait(BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS)) - 1]):
                    raise _Cancelled() from None

    def _retryable(self, err):
        if isinstance(err, (OSError, http.client.HTTPException)):
            return True
        check = getattr(self.source, "retryable", None)
        return bool(check and check(err))

    def _attempt(self, held, buffer, cancel):
        part = held[0]
        start = part.offset + part.done
        stream, begins, stops = self.source.open(start, part.end)
        try:
            if begins != start or (begins, stops) == (0, self.size) != (start, part.end):
                # not the range asked for: the whole blob (a server that ignores Range), or an error; a range
                # that ends early is copied as far as it goes and asked for again from there
                held[0] = part = self._whole_blob(part, begins, stops)
            elif self.mode == "probe":
                with self.lock:
                    self.mode = "ranged"
                    self._start_hasher()
                self.downloader.wake()
            self._copy(stream, part, buffer, cancel)
        finally:
            with contextlib.suppress(Exception):
                stream.close()

    def _whole_blob(self, part, begins, stops):
        """The server sent the whole blob instead of the range: one stream then, from the start."""
        if self.mode != "probe" or begins != 0 or stops != self.size:
            why = (
                "the server does not honour Range requests, so a broken download starts again from its "
                "beginning: run again"
                if self.mode == "single"
                else f"the server answered with bytes {begins}-{stops - 1}"
            )
            raise DownloadError(
                f"the download of blob {self.digest} broke off at byte {part.offset + part.done} of {self.size}; "
                + why,
                kind="short",
                digest=self.digest,
                found=part.offset + part.done,
            )
        with self.lock:
            self.retired += sum(p.received for p in self.parts)
            whole = Part(0, self.size)
            whole.running = True
            self.parts = [whole]
            self.mode = "single"
            self.blob.checkpoint(self.parts)
            self.saved = [whole.row()]
            self._start_hasher()
        self.downloader.wake()
        return whole

    def _copy(self, stream, part, buffer, cancel):
        view = memoryview(buffer)
        readinto = getattr(stream, "readinto", None)
        pos = part.offset + part.done
        while pos < part.end:
            if cancel.is_set():
                raise _Cancelled()
            want = view[: min(len(buffer), part.end - pos)]
            if readinto is not None:
                count = readinto(want)
            else:
                data = stream.read(len(want))
                count = len(data)
                want[:count] = data
            if not count:
                raise _Short(f"the stream ended at byte {pos}, before byte {part.end}")
            self.blob.write(view[:count], pos)
            pos += count
            if pos >= self.size and stream.read(1):
                # checked before the last bytes count as done, which would have the hasher judge them first
                raise DownloadError(
                    f"blob {self.digest} is larger than the {self.size} bytes its manifest declares",
                    kind="size",
                    digest=self.digest,
                    found=self.size + 1,
                )
            part.done += count
            part.received += count
            if part.done - part.notified >= HASH_STEP or pos >= part.end:
                part.notified = part.done
                with self.lock:
                    self.lock.notify_all()
                    if pos >= part.end and self._frontier() == self.size:
                        self._start_syncer()

    # -- the hasher ---------------------------------------------------------------------------------

    def _start_syncer(self):
        # the last byte is written: the disk writes it while the hasher reads it back, and the fsync of
        # commit() then finds little left to wait for
        if self.syncer is None and not self.committing and self.blob.fd is not None:
            self.syncer = threading.Thread(
                target=_fdatasync, args=(self.blob.fd,), name="sync " + self.digest[7:19], daemon=True
            )
            self.syncer.start()

    def _start_hasher(self):
        if self.hasher is None:
            self.hasher = threading.Thread(target=self._hash, name="hash " + self.digest[7:19], daemon=True)
            self.hasher.start()

    def _frontier(self):
        for part in self.parts:
            if not part.complete:
                return part.offset + part.done
        return self.size

    def _hash(self):
        try:
            found = self._hash_in_order()
            if found is None:
                return
            if found != self.digest:
                raise DownloadError(
                    f"blob {self.digest} arrived with sha256 {found}", kind="digest", digest=self.digest, found=found
                )
            with self.lock:
                self.committing = True  # no syncer starts any more: it would outlive the descriptor
                syncer = self.syncer
            if syncer is not None:
                syncer.join()
            with self.lock:
                self.blob.commit()
                self.committed = True
        except BaseException as err:  # noqa: BLE001 - handed to the coordinator, which raises it
            with self.lock:
                self.error = self.error or err
        finally:
            self.downloader.wake()

    def _hash_in_order(self):
        # In order, as the parts complete, rather than once the last byte is in (re-reading the whole file then).
        # Measured on a 1 GiB blob, medians of 4-6 module runs: the same within noise when every part runs at
        # once (16 parts of 64 MiB: 5.40 s vs 5.53 s at 20 MiB/s per connection, 3.12 s vs 2.87 s unlimited),
        # 12% faster once the blob has more parts than connections (64 parts: 3.64 s vs 4.12 s at 20 MiB/s),
        # as every blob over 16 GB has with the default sizes. It also reads back pages written moments ago,
        # where hashing afterwards would read a blob larger than the memory back from the disk.
        hasher = hashlib.sha256()
        buffer = bytearray(HASH_BUFFER)
        view = memoryview(buffer)
        pos = 0
        cancel = self.downloader.cancel
        while pos < self.size:
            with self.lock:
                while True:
                    if cancel.is_set() or self.error:
                        return None
                    front = self._frontier()
                    if front >= min(self.size, pos + HASH_STEP):
                        break
                    self.lock.wait(0.5)
            while pos < front:
                try:
                    count = _pread_into(self.blob.fd, view[: min(len(buffer), front - pos)], pos)
                except OSError as err:
                    raise io_error(err, f"reading {self.blob.partial}", self.blob.partial) from err
                if not count:
                    raise DownloadError(f"{self.blob.partial} is shorter than its progress says", kind="short")
                hasher.update(view[:count])
                pos += count
        return "sha256:" + hasher.hexdigest()


class Downloader:
    """Downloads blobs in ranged parts, at most `max_connections` at once over all of them and `parts` per blob.

    add() each blob, then run(): it returns {digest: bytes received} once every blob is verified and in place,
    or raises DownloadFailed for the first blob that failed, after stopping the others and saving their progress.
    `progress(count, downloader)` hears of the bytes received a few times a second.
    """

    def __init__(
        self,
        max_connections=DEFAULT_MAX_CONNECTIONS,
        parts=DEFAULT_PARTS,
        part_size=None,
        retries=RETRIES,
        progress=None,
        checkpoint_seconds=CHECKPOINT_SECONDS,
    ):
        self.max_connections = max(1, int(max_connections))
        self.parts = max(1, int(parts))
        self._part_size = part_size
        self.retries = retries
        self.progress = progress
        self.checkpoint_seconds = checkpoint_seconds
        self.jobs = []
        self.cancel = threading.Event()
        self._wake = threading.Condition()
        self._woken = False
        self._workers = []
        self._buffers = []  # read buffers of finished workers, for the next ones

    def part_size(self, size):
        return part_size_for(size, self.parts, self._part_size)

    def add(self, digest, size, final, source):
        job = BlobJob(self, digest, size, final, source)
        self.jobs.append(job)
        return job

    def wake(self):
        with self._wake:
            self._woken = True
            self._wake.notify_all()

    @property
    def active_connections(self):
        return sum(job.inflight for job in self.jobs)

    @property
    def blobs_done(self):
        return sum(1 for job in self.jobs if job.committed)

    def current(self):
        """(number, job) of the first blob, in download order, that is not in place yet; None when all are."""
        for number, job in enumerate(self.jobs, 1):
            if not job.committed:
                return number, job
        return None

    def received(self):
        return sum(job.received() for job in self.jobs)

    def run(self):
        # small blobs first: they take one connection for a moment and are done
        self.jobs.sort(key=lambda job: job.size)
        reported = 0
        try:
            for job in self.jobs:
                job.prepare()
            while True:
                failed = self._failed()
                if failed or all(job.committed for job in self.jobs):
                    break
                self._dispatch()
                with self._wake:
                    if not self._woken:
                        self._wake.wait(self.checkpoint_seconds)
                    self._woken = False
                for job in self.jobs:
                    job.checkpoint()
                if self.progress:
                    now = self.received()
                    self.progress(now - reported, self)
                    reported = now
        except BaseException:
            self._stop()
            raise
        if failed:
            self._stop()
            raise DownloadFailed(failed.digest, failed.size, failed.error, self.received())
        if self.progress:
            self.progress(self.received() - reported, self)
        return {job.digest: job.received() for job in self.jobs}

    def _failed(self):
        """The first blob that failed for good, if any. A resumed blob that does not verify starts once more from
        nothing: what an earlier run left may be what is wrong (a crash before its data reached the disk)."""
        for job in self.jobs:
            error = job.error
            if error is None:
                continue
            if getattr(error, "kind", None) == "digest" and job.resumed and not job.fresh_retry:
                job.hasher.join()
                job.restart_fresh()
                continue
            return job
        return None

    def _dispatch(self):
        while self.active_connections < self.max_connections and not self.cancel.is_set():
            candidates = sorted((job for job in self.jobs if job.inflight < self.parts), key=lambda job: job.inflight)
            for job in candidates:
                with job.lock:
                    part = job.next_part()
                    if part is None:
                        continue
                    part.running = True
                    job.inflight += 1
                self._start_worker(job, part)
                break
            else:
                return

    def _start_worker(self, job, part):
        held = [part]

        def work():
            with self._wake:
                buffer = self._buffers.pop() if self._buffers else bytearray(READ_BUFFER)
            try:
                job.fetch(held, buffer, self.cancel)
            except _Cancelled:
                pass
            except BaseException as err:  # noqa: BLE001 - handed to the coordinator, which raises it
                with job.lock:
                    job.error = job.error or _as_download_error(err, job, held[0])
            finally:
                with job.lock:
                    held[0].running = False
                    job.inflight -= 1
                    job.lock.notify_all()
                with self._wake:
                    self._buffers.append(buffer)
                self.wake()

        thread = threading.Thread(target=work, name="part " + job.digest[7:19], daemon=True)
        self._workers.append(thread)
        thread.start()

    def _stop(self):
        """Stop every worker and hasher, then save what each blob has, so that a rerun resumes; a blob whose
        content is known to be wrong is removed instead."""
        self.cancel.set()
        for job in self.jobs:
            with job.lock:
                job.lock.notify_all()
        deadline = time.monotonic() + 120
        helpers = [thread for job in self.jobs for thread in (job.hasher, job.syncer) if thread is not None]
        for thread in self._workers + helpers:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = any(thread.is_alive() for thread in self._workers)
        for job in self.jobs:
            if job.committed:
                continue
            if getattr(job.error, "kind", None) in ("digest", "size"):
                job.blob.discard()
                continue
            with contextlib.suppress(Exception):
                job.checkpoint()
            if not stuck:
                # a worker still in a read would write through the descriptor: it goes with the process instead
                job.blob.close()


def _as_download_error(err, job, part):
    if isinstance(err, _Short) or (isinstance(err, OSError) and not isinstance(err, DownloadError)):
        return DownloadError(
            f"the download of blob {job.digest} broke off at byte {part.offset + part.done} of {job.size}: {err}",
            kind="short",
            digest=job.digest,
            found=part.offset + part.done,
        )
    if isinstance(err, http.client.HTTPException):
        return DownloadError(
            f"the download of blob {job.digest} broke off at byte {part.offset + part.done} of {job.size}: "
            f"{type(err).__name__} {err}",
            kind="short",
            digest=job.digest,
        )
    return err


class StreamSource:
    """A source over `opener(offset) -> (stream, start)`: one stream from `offset` to the end of the blob, where
    `start` is the offset the stream really begins at (0 when the server ignored the range)."""

    def __init__(self, opener, size):
        self.opener = opener
        self.size = size

    def open(self, start, end):
        stream, begins = self.opener(start)
        return stream, begins, self.size
