# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The on-disk Ollama model store (`OLLAMA_MODELS`), written the way an Ollama pull writes it.

    manifests/<registry>/<namespace>/<model>/<tag>   the manifest, Go-encoded, written last
    blobs/sha256-<hex>                                 one file per layer and config

A model is visible only when it is complete: every blob is streamed into `sha256-<hex>-partial`
while its sha256 is computed, checked against the digest and size, and renamed atomically; the
manifest is written (through a temporary file and a rename) only once every blob it names is in
place. Whatever a failure leaves behind is a `-partial` file, which Ollama removes at start-up
and this module resumes from.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import re
import tempfile

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import ollama_manifest_bytes

CHUNK = 1 << 20
PARTIAL_SUFFIX = "-partial"
_DIGEST = re.compile(r"^sha256[:-]([0-9a-fA-F]{64})$")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class StoreError(Exception):
    """`kind` is one of digest, size, short, disk_full, corrupt, incomplete, io."""

    def __init__(self, msg, kind="io", digest=None, found=None, path=None):
        super().__init__(msg)
        self.msg = msg
        self.kind = kind
        self.digest = digest
        self.found = found
        self.path = path

    def __str__(self):
        return self.msg


def digest_hex(digest):
    """`sha256:<hex>` or `sha256-<hex>` -> `<hex>` (lower case); StoreError for anything else."""
    match = _DIGEST.match(digest or "")
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


def _fsync_dir(path):
    # the rename is durable only once the directory entry is; not every filesystem allows it
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalManifest:
    """A manifest read from the store: its parsed content, file digest (what Ollama lists) and path."""

    def __init__(self, manifest, digest, path):
        self.manifest = manifest
        self.digest = digest
        self.path = path

    @property
    def size(self):
        return manifest_size(self.manifest)


class BlobWriter:
    """Streams one blob into its `-partial` file, hashing as it goes; `commit` verifies and renames."""

    def __init__(self, store, digest, size):
        self.store = store
        self.digest = "sha256:" + digest_hex(digest)
        self.size = size
        self.path = store.blob_path(digest)
        self.partial = self.path + PARTIAL_SUFFIX
        self.hasher = hashlib.sha256()
        self.offset = 0
        self._handle = None

    def resume(self):
        """Pick up a partial file of an earlier run: hash what it holds, return the offset to continue at."""
        try:
            have = os.path.getsize(self.partial)
        except OSError:
            have = 0
        if 0 < have < self.size:
            with open(self.partial, "rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    self.hasher.update(chunk)
            self.offset = have
        else:
            self.restart()
        return self.offset

    def restart(self):
        self.hasher = hashlib.sha256()
        self.offset = 0
        if self._handle:
            self._handle.seek(0)
            self._handle.truncate()

    def _open(self):
        if self._handle is None:
            # kept open across write() calls; commit() and abort() close it
            self._handle = open(self.partial, "r+b" if self.offset else "wb")  # noqa: SIM115
            self._handle.seek(self.offset)
            self._handle.truncate()
        return self._handle

    def write(self, data):
        if self.offset + len(data) > self.size:
            self.abort(remove=True)
            raise StoreError(
                f"blob {self.digest} is larger than the {self.size} bytes its manifest declares",
                kind="size",
                digest=self.digest,
                found=self.offset + len(data),
            )
        try:
            self._open().write(data)
        except OSError as err:
            self.abort()
            raise _io_error(err, f"writing {self.partial}", self.partial) from err
        self.hasher.update(data)
        self.offset += len(data)

    def commit(self):
        if self.offset != self.size:
            self.abort()
            raise StoreError(
                f"blob {self.digest} ended after {self.offset} of {self.size} bytes",
                kind="short",
                digest=self.digest,
                found=self.offset,
            )
        found = "sha256:" + self.hasher.hexdigest()
        if found != self.digest:
            # a resumed download would only reproduce the same bytes: start from nothing next time
            self.abort(remove=True)
            raise StoreError(
                f"blob {self.digest} arrived with sha256 {found}", kind="digest", digest=self.digest, found=found
            )
        try:
            handle = self._open()
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            self._handle = None
            os.replace(self.partial, self.path)
        except OSError as err:
            self.abort()
            raise _io_error(err, f"renaming {self.partial}", self.path) from err
        _fsync_dir(os.path.dirname(self.path))

    def abort(self, remove=False):
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        if remove:
            with contextlib.suppress(OSError):
                os.remove(self.partial)


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

    def free_bytes(self):
        """Bytes available to this user on the store's filesystem (of its nearest existing parent)."""
        path = self.root
        while not os.path.exists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        stat = os.statvfs(path)
        return stat.f_bavail * stat.f_frsize

    # -- reading ------------------------------------------------------------------------------

    def read_manifest(self, ref):
        """The model's manifest, or None when the store has none; StoreError(corrupt) when unreadable."""
        return self._read(self.manifest_path(ref))

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
        return LocalManifest(manifest, "sha256:" + hashlib.sha256(body).hexdigest(), path)

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
        """Bytes a `-partial` file already holds towards a blob, for resuming."""
        try:
            have = os.path.getsize(self.blob_path(digest) + PARTIAL_SUFFIX)
        except OSError:
            return 0
        return have if have < size else 0

    def manifests(self):
        """Every manifest file, as Ollama finds them (manifests/*/*/*/*)."""
        pattern = os.path.join(glob.escape(self.manifests_dir), "*", "*", "*", "*")
        return sorted(path for path in glob.glob(pattern) if os.path.isfile(path))

    # -- writing ------------------------------------------------------------------------------

    def download_blob(self, digest, size, opener, progress=None):
        """Fetch one blob through `opener(offset) -> (stream, start)` and commit it.

        `start` is the offset the stream begins at: a server that ignores the range answers from 0.
        """
        self.ensure_dirs()
        writer = BlobWriter(self, digest, size)
        offset = writer.resume()
        stream, start = opener(offset)
        if start != offset:
            writer.restart()
        try:
            while True:
                data = stream.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                if progress:
                    progress(len(data))
        except StoreError:
            raise
        except OSError as err:
            writer.abort()
            raise StoreError(
                f"the download of blob {writer.digest} broke off after {writer.offset} of {size} bytes: {err}",
                kind="short",
                digest=writer.digest,
                found=writer.offset,
            ) from err
        finally:
            with contextlib.suppress(Exception):
                stream.close()
        writer.commit()
        return writer.offset - (offset if start == offset else 0)

    def write_manifest(self, ref, manifest):
        """Write the manifest last, atomically; refuse while any blob it names is missing. Returns its digest."""
        missing = self.missing(manifest)
        if missing:
            raise StoreError(
                "not writing the manifest of {}: blob(s) {} are not complete in {}".format(
                    ref.full, ", ".join(d for d, _s in missing), self.blobs_dir
                ),
                kind="incomplete",
            )
        body = ollama_manifest_bytes(manifest)
        path = self.manifest_path(ref)
        self.ensure_dirs()
        tmp = None
        try:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            # the temporary file lives in blobs/ under a name Ollama's start-up prune removes, so
            # a crash here can never leave something that looks like a manifest
            fd, tmp = tempfile.mkstemp(prefix="manifest-", suffix=PARTIAL_SUFFIX, dir=self.blobs_dir)
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            tmp = None
        except OSError as err:
            raise _io_error(err, f"writing {path}", path) from err
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
        _fsync_dir(os.path.dirname(path))
        return "sha256:" + hashlib.sha256(body).hexdigest()

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
        in_use = set()
        for other in self.manifests():
            try:
                found = self._read(other)
            except StoreError:
                return [], 0, f"{other} cannot be read, so the blobs it uses are unknown"
            if found:
                in_use.update(digest_hex(d) for d, _s in descriptors(found.manifest))
        removed, freed = [], 0
        for digest, _size in descriptors(local.manifest):
            if digest_hex(digest) in in_use:
                continue
            blob = self.blob_path(digest)
            for candidate in (blob, blob + PARTIAL_SUFFIX):
                try:
                    size = os.path.getsize(candidate)
                    os.remove(candidate)
                except FileNotFoundError:
                    continue
                except OSError as err:
                    raise _io_error(err, f"removing {candidate}", candidate) from err
                if candidate == blob:
                    removed.append(digest)
                freed += size
        return removed, freed, None

    def _prune_dirs(self, path):
        """Remove empty directories from `path` up to, not including, manifests/."""
        while path.startswith(self.manifests_dir + os.sep):
            try:
                os.rmdir(path)
            except OSError:
                return
            path = os.path.dirname(path)
