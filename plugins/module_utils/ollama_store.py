# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The on-disk Ollama model store (`OLLAMA_MODELS`), written the way an Ollama pull writes it.

    manifests/<registry>/<namespace>/<model>/<tag>   the manifest, Go-encoded, written last
    blobs/sha256-<hex>                                 one file per layer and config

A model is visible only when it is complete: every blob is downloaded into `sha256-<hex>-partial`
(in parallel ranged parts, module_utils/blob_download.py), its sha256 checked against the digest and
size, and renamed atomically; the manifest is written (through a temporary file and a rename) only once
every blob it names is in place. Whatever a failure leaves behind is a `-partial` file with its progress,
which Ollama removes at start-up and this module resumes from.

Writers take the store's lock (StoreLock, flock on `.ollama_store.lock` in the store directory), so that
two seeders of one store, on one host or on two that share the volume, never write the same files at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import json
import os
import re
import socket
import time

from ansible_collections.aiplatform.ollama.plugins.module_utils.atomic_write import write_atomically
from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_download import (
    Downloader,
    DownloadFailed,
    StreamSource,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_partial import (
    PARTIAL_SUFFIX,
    PROGRESS_SUFFIX,
    DownloadError,
    PartialBlob,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError, InputError
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (
    content_digest,
    ollama_manifest_bytes,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import human_bytes

CHUNK = 1 << 20
LOCK_NAME = ".ollama_store.lock"
VERIFY_BUFFER = 4 << 20
# fullmatch: a digest with a trailing newline would name another file
_DIGEST = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")
# a complete blob file, as Ollama names it (a partial download has a suffix)
_BLOB_FILE = re.compile(r"sha256-([0-9a-f]{64})")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class StoreError(CollectionError):
    """`kind` is one of digest, size, short, disk_full, corrupt, incomplete, io, locked, absent."""

    def __init__(self, msg, kind="io", digest=None, found=None, path=None):
        super().__init__(msg, kind=kind, digest=digest, found=found, path=path)


def digest_hex(digest):
    """`sha256:<hex>` or `sha256-<hex>` -> `<hex>` (lower case); StoreError for anything else."""
    match = _DIGEST.fullmatch(digest or "")
    if not match:
        raise StoreError(f"{digest!r} is not a sha256 digest (sha256:<64 hex digits>)", kind="corrupt", digest=digest)
    return match.group(1).lower()


def blob_name(digest):
    """The file name Ollama keeps a blob under: `sha256-<hex>`."""
    return "sha256-" + digest_hex(digest)


def descriptors(manifest):
    """Config and layers of a manifest, each digest once, as [(digest, size)]."""
    seen, out = set(), []
    for item in [manifest.get("config") or {}] + list(manifest.get("layers") or []):
        digest = item.get("digest")
        if digest and digest not in seen:
            seen.add(digest)
            out.append((digest, int(item.get("size") or 0)))
    return out


def manifest_size(manifest):
    return sum(size for _digest, size in descriptors(manifest))


def is_disk_full(err):
    return isinstance(err, OSError) and err.errno in _NO_SPACE


class LocalManifest:
    """A manifest read from the store: its parsed content, file digest (what Ollama lists) and path."""

    def __init__(self, manifest, digest, path):
        self.manifest = manifest
        self.digest = digest
        self.path = path

    @property
    def size(self):
        return manifest_size(self.manifest)


def _io_error(err, doing, path):
    if is_disk_full(err):
        return StoreError(f"no space left on the device {doing} ({err.strerror})", kind="disk_full", path=path)
    return StoreError(f"{doing}: {err.strerror or err}", kind="io", path=path)


class OllamaStore:
    """One `OLLAMA_MODELS` directory."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.manifests_dir = os.path.join(self.root, "manifests")
        self.blobs_dir = os.path.join(self.root, "blobs")

    # -- layout -------------------------------------------------------------------------------

    def manifest_path(self, ref):
        return os.path.join(self.manifests_dir, ref.host, ref.namespace, ref.model, ref.tag)

    def blob_path(self, digest):
        return os.path.join(self.blobs_dir, blob_name(digest))

    def ensure_dirs(self):
        for path in (self.manifests_dir, self.blobs_dir):
            try:
                os.makedirs(path, mode=0o755, exist_ok=True)
            except OSError as err:
                raise _io_error(err, f"creating {path}", path) from err

    def _nearest_existing(self):
        path = self.root
        while not os.path.exists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        return path

    def free_bytes(self):
        """Bytes available to this user on the store's filesystem (of its nearest existing parent)."""
        stat = os.statvfs(self._nearest_existing())
        return stat.f_bavail * stat.f_frsize

    def require_free(self, needed, doing):
        """Refuse `doing` (what the message says is being done) before anything is written when it needs more
        bytes than the filesystem has free: StoreError(disk_full). A filesystem that does not say what it has
        free is no reason to refuse; a write that does run out fails then, as disk_full too."""
        try:
            free = self.free_bytes()
        except OSError:
            return
        if needed > free:
            raise StoreError(
                f"{doing} needs {human_bytes(needed)} more, but its filesystem has {human_bytes(free)} free: grow the "
                "volume or free space; nothing was written",
                kind="disk_full", path=self.root,
            )

    def unwritable_reason(self):
        """Why this user cannot write the store, naming the cause and the fix; None when it can.

        Checked before anything is written, so that a permission problem is not mistaken for a full
        disk or a registry failure halfway through a download.
        """
        path = self._nearest_existing()
        try:
            stat = os.statvfs(path)
            info = os.stat(path)
        except OSError as err:
            return f"{path} cannot be read ({err.strerror}): check the path, the mount and its permissions"
        if stat.f_blocks == 0:
            # proc, sysfs and friends report no blocks: they hold no files of ours whatever the permissions
            return (f"{path} is on a pseudo-filesystem that holds no files (it reports no blocks): give the store a "
                    "directory on a disk or on the mounted volume")
        if not os.path.isdir(path):
            return f"{path} is not a directory: the store path must be a directory or not exist yet"
        if not os.access(path, os.W_OK | os.X_OK):
            return (f"user {os.geteuid()} cannot write to {path} (owner {info.st_uid}, mode "
                    f"{oct(info.st_mode & 0o7777)}): run the task with become: true, or make the volume writable by "
                    "that user (chown, or the pod's fsGroup)")
        return None

    # -- reading ------------------------------------------------------------------------------

    def read_manifest(self, ref):
        """The model's manifest, or None when the store has none; StoreError(corrupt) when unreadable."""
        return self._read(self.manifest_path(ref))

    def absent_message(self, ref):
        """What every caller says of a model the store has no manifest of."""
        return f"{ref.short} is not in the store {self.root} (no manifest at {self.manifest_path(ref)})"

    def require_manifest(self, ref):
        """The model's manifest; StoreError(absent) when the store has none, a read error naming the model."""
        try:
            local = self.read_manifest(ref)
        except StoreError as err:
            raise StoreError(f"reading the manifest of {ref.short} in {self.root}: {err}", kind=err.kind,
                             path=err.path) from err
        if local is None:
            raise StoreError(self.absent_message(ref), kind="absent", path=self.manifest_path(ref))
        return local

    def _read(self, path):
        try:
            with open(path, "rb") as handle:
                body = handle.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise _io_error(err, f"reading {path}", path) from err
        try:
            manifest = json.loads(body)
        except ValueError:
            manifest = None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
            raise StoreError(f"{path} is not an image manifest", kind="corrupt", path=path)
        return LocalManifest(manifest, content_digest(body), path)

    def blob_complete(self, digest, size):
        """True when the blob file exists with the declared size (the digest was checked when it was written)."""
        try:
            return os.path.getsize(self.blob_path(digest)) == size
        except OSError:
            return False

    def missing(self, manifest):
        """[(digest, size)] of the manifest's blobs that are absent or of the wrong size."""
        return [(digest, size) for digest, size in descriptors(manifest) if not self.blob_complete(digest, size)]

    def partial_bytes(self, digest, size):
        """Bytes an interrupted download already holds towards a blob, for resuming."""
        return PartialBlob(self.blob_path(digest), "sha256:" + digest_hex(digest), size).done_bytes()

    def verify_blob(self, digest, size, progress=None):
        """Re-hash one blob: ("ok" | "missing" | "corrupt", what was found). `progress(count)` gets the bytes read."""
        path = self.blob_path(digest)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the hints
        except FileNotFoundError:
            return "missing", None
        except OSError as err:
            raise _io_error(err, f"reading {path}", path) from err
        with handle:
            have = os.fstat(handle.fileno()).st_size
            if have != size:
                return "corrupt", f"{have} bytes instead of {size}"
            with contextlib.suppress(AttributeError, OSError):
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            hasher = hashlib.sha256()
            buffer = bytearray(VERIFY_BUFFER)
            view = memoryview(buffer)
            try:
                while True:
                    count = handle.readinto(buffer)
                    if not count:
                        break
                    hasher.update(view[:count])
                    if progress:
                        progress(count)
            except OSError as err:
                raise _io_error(err, f"reading {path}", path) from err
        found = "sha256:" + hasher.hexdigest()
        return ("ok", found) if found == "sha256:" + digest_hex(digest) else ("corrupt", f"sha256 {found}")

    def remove_blob(self, digest):
        """Remove a blob file and whatever an interrupted download of it left; returns the bytes freed."""
        blob = self.blob_path(digest)
        freed = 0
        for candidate in (blob, blob + PARTIAL_SUFFIX, blob + PARTIAL_SUFFIX + PROGRESS_SUFFIX):
            try:
                size = os.path.getsize(candidate)
                os.remove(candidate)
            except FileNotFoundError:
                continue
            except OSError as err:
                raise _io_error(err, f"removing {candidate}", candidate) from err
            freed += size
        return freed

    def manifests(self):
        """Every manifest file, as Ollama finds them (manifests/*/*/*/*)."""
        pattern = os.path.join(glob.escape(self.manifests_dir), "*", "*", "*", "*")
        return sorted(path for path in glob.glob(pattern) if os.path.isfile(path))

    # -- writing ------------------------------------------------------------------------------

    def download_blob(self, digest, size, opener, progress=None):
        """Fetch one blob as one stream through `opener(offset) -> (stream, start)` and commit it; returns the
        bytes received. `start` is the offset the stream begins at: a server that ignores the range answers from 0.
        """
        try:
            received = self.download_blobs(
                [(digest, size, StreamSource(opener, size))],
                progress and (lambda count, _downloader: progress(count)),
                max_connections=1,
                parts=1,
                retries=0,
            )
        except DownloadFailed as err:
            raise err.cause from None
        return received["sha256:" + digest_hex(digest)]

    def download_blobs(self, blobs, progress=None, **options):
        """Download [(digest, size, source)] in ranged parts (blob_download.Downloader: `progress` and `options`),
        each verified and renamed into place; returns {digest: bytes received}. Raises DownloadFailed for the
        first blob that failed, its `cause` a StoreError when the store or the content is at fault (the source's
        own error otherwise)."""
        self.ensure_dirs()
        downloader = Downloader(progress=progress, **options)
        for digest, size, source in blobs:
            downloader.add("sha256:" + digest_hex(digest), size, self.blob_path(digest), source)
        try:
            return downloader.run()
        except DownloadFailed as err:
            if isinstance(err.cause, DownloadError):
                cause = err.cause
                err.cause = StoreError(
                    cause.msg, kind=cause.kind, digest=cause.digest or err.digest, found=cause.found, path=cause.path
                )
            raise

    def lock(self, timeout=None, holder="", waiting=None):
        """The store's lock, for a `with` block: see StoreLock."""
        return StoreLock(self, timeout=timeout, holder=holder, waiting=waiting)

    def write_manifest(self, ref, manifest, body=None):
        """Write the manifest last, atomically; refuse while any blob it names is missing. Returns its digest.

        `body` is the file's exact bytes when they are not those of a pull (a derived model's, which
        Ollama's encoder ends with a newline)."""
        missing = self.missing(manifest)
        if missing:
            raise StoreError(
                "not writing the manifest of {}: blob(s) {} are not complete in {}".format(
                    ref.full, ", ".join(d for d, _s in missing), self.blobs_dir
                ),
                kind="incomplete",
            )
        if body is None:
            body = ollama_manifest_bytes(manifest)
        path = self.manifest_path(ref)
        self.ensure_dirs()
        try:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        except OSError as err:
            raise _io_error(err, f"writing {path}", path) from err
        self._write_atomically(path, body, "manifest-")
        return content_digest(body)

    def put_blob(self, body):
        """Write a blob held in memory (a derived model's params or config) atomically, unless the store
        already holds these bytes: (digest, whether it was written)."""
        digest = content_digest(body)
        path = self.blob_path(digest)
        if self._read_bytes(path) == body:
            return digest, False
        self.ensure_dirs()
        self._write_atomically(path, body, "blob-")
        return digest, True

    def put_model(self, ref, blobs, manifest_body):
        """Write a model made in memory ([(digest, bytes)] blobs, then the manifest's exact bytes) where the
        store does not hold those bytes already; returns whether anything was written. Whatever a failure
        left of it that no manifest uses is removed again."""
        written = []
        try:
            for _digest, body in blobs:
                digest, new = self.put_blob(body)
                if new:
                    written.append(digest)
            current = self._read_bytes(self.manifest_path(ref))
            if current != manifest_body:
                self.write_manifest(ref, json.loads(manifest_body), body=manifest_body)
                return True
        except StoreError:
            with contextlib.suppress(StoreError):
                self.prune(written)
            raise
        return bool(written)

    def _read_bytes(self, path):
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise _io_error(err, f"reading {path}", path) from err

    def _write_atomically(self, path, body, prefix):
        # the temporary file lives in blobs/ under a name Ollama's start-up prune removes, so a crash
        # here can never leave something that looks like a manifest or a complete blob
        try:
            write_atomically(path, body, prefix, suffix=PARTIAL_SUFFIX, tmp_dir=self.blobs_dir)
        except OSError as err:
            raise _io_error(err, f"writing {path}", path) from err

    def remove(self, ref):
        """Remove the model's manifest, then the blobs no other manifest references.

        Returns (removed blob digests, bytes freed, kept_reason); blobs are kept, with the reason,
        when another manifest cannot be read, since its references are then unknown.
        """
        path = self.manifest_path(ref)
        try:
            local = self._read(path)
        except StoreError as err:
            if err.kind != "corrupt":
                raise
            local = None
        if local is None and not os.path.exists(path):
            return [], 0, None
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise _io_error(err, f"removing {path}", path) from err
        self._prune_dirs(os.path.dirname(path))
        if local is None:
            return [], 0, f"{path} was not a readable manifest, so its blobs are unknown"
        return self.prune([digest for digest, _size in descriptors(local.manifest)])

    def in_use(self):
        """The hex digests every manifest in the store references: (set, None), or (None, reason) when a
        manifest cannot be read, since the blobs it uses are then unknown."""
        in_use = set()
        for other in self.manifests():
            try:
                found = self._read(other)
            except StoreError:
                return None, f"{other} cannot be read, so the blobs it uses are unknown"
            if found:
                in_use.update(digest_hex(d) for d, _s in descriptors(found.manifest))
        return in_use, None

    def unreferenced(self):
        """The complete blob files no manifest references, as (digest, bytes) pairs: (pairs, None), or
        ([], reason) when a manifest cannot be read. Partial downloads are not blobs yet: a rerun of the
        seed that left them resumes from them."""
        in_use, reason = self.in_use()
        if reason:
            return [], reason
        try:
            names = sorted(os.listdir(self.blobs_dir))
        except FileNotFoundError:
            return [], None
        except OSError as err:
            raise _io_error(err, f"listing {self.blobs_dir}", self.blobs_dir) from err
        found = []
        for name in names:
            match = _BLOB_FILE.fullmatch(name)
            if match and match.group(1) not in in_use:
                with contextlib.suppress(FileNotFoundError):
                    found.append((f"sha256:{match.group(1)}", os.path.getsize(os.path.join(self.blobs_dir, name))))
        return found, None

    def prune(self, digests):
        """Remove the blobs among `digests` that no manifest in the store references: (removed, bytes freed,
        kept_reason); nothing is removed, with the reason, when a manifest cannot be read."""
        in_use, reason = self.in_use()
        if reason:
            return [], 0, reason
        removed, freed = [], 0
        for digest in dict.fromkeys(digests):
            if digest_hex(digest) in in_use:
                continue
            present = os.path.exists(self.blob_path(digest))
            freed += self.remove_blob(digest)
            if present:
                removed.append(digest)
        return removed, freed, None

    def _prune_dirs(self, path):
        """Remove empty directories from `path` up to, not including, manifests/."""
        while path.startswith(self.manifests_dir + os.sep):
            try:
                os.rmdir(path)
            except OSError:
                return
            path = os.path.dirname(path)


def check_lock_timeout(value):
    """The `lock_timeout` option of a store writer, checked before anything is read or written."""
    if value is not None and value < 0:
        raise InputError(
            f"lock_timeout must be 0 or more seconds, got {value:g}: leave it unset to wait as long as another "
            "seeder runs"
        )


class StoreLock:
    """flock on `.ollama_store.lock` in the store directory, held by one writer at a time.

    flock goes with its holder's process, a killed one included, so a lock is never stale. The holder removes the
    file when it releases it (nothing of the seeder stays in the store); a waiter that then gets the lock of the
    removed file notices that the name is gone or names another file, and locks again. The file says who holds it
    (pid, host, what, since), for the message of the one that waits.
    """

    def __init__(self, store, timeout=None, holder="", waiting=None, poll=0.2):
        self.store = store
        self.path = os.path.join(store.root, LOCK_NAME)
        self.timeout = timeout
        self.holder = holder
        self.waiting = waiting
        self.poll = poll
        self.fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self):
        self.store.ensure_dirs()
        started = time.monotonic()
        while True:
            fd = self._open()
            try:
                while not self._try(fd):
                    waited = time.monotonic() - started
                    if self.timeout is not None and waited >= self.timeout:
                        raise StoreError(
                            f"the store {self.store.root} is locked by another writer ({self.held_by()}) and was "
                            f"still after {self.timeout:g}s of lock_timeout: let it finish and run again, or raise "
                            "lock_timeout",
                            kind="locked",
                            path=self.path,
                        )
                    if self.waiting:
                        self.waiting(self.held_by(), waited)
                    time.sleep(self.poll)
                if self._still_named(fd):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder before removed this file: lock the one the name has now
        self.fd = fd
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "what": self.holder, "since": since})
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, body.encode(), 0)

    def _open(self):
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise _io_error(err, f"opening the lock file {self.path}", self.path) from err

    def _try(self, fd):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise _io_error(err, f"locking {self.path}", self.path) from err

    def _still_named(self, fd):
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def held_by(self):
        """Who holds the lock, as its file says."""
        try:
            with open(self.path, "rb") as handle:
                info = json.loads(handle.read() or b"{}")
        except (OSError, ValueError):
            info = {}
        if not info.get("pid"):
            return "holder unknown"
        what = f", {info['what']}" if info.get("what") else ""
        return f"pid {info['pid']} on {info.get('host', '?')}{what}, since {info.get('since', '?')}"

    def release(self):
        if self.fd is None:
            return
        # removed while still held, so that no one can lock this file in between and believe it holds the store
        with contextlib.suppress(OSError):
            os.remove(self.path)
        os.close(self.fd)
        self.fd = None
