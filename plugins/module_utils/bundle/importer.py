# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Importing a bundle into a store: every model it holds, or nothing.

An import writes into the store under the store's lock (ollama_store.StoreLock), the one every
ollama_store_model writer takes, so an import and a seed of the same store never interleave. The
bundle is validated before the lock is taken (it is the import's own file); what the store already
holds is looked at again under the lock, since a seeder may have written or removed blobs meanwhile.

A seeder killed mid-download leaves `blobs/sha256-<hex>-partial` and its parts' progress,
`sha256-<hex>-partial.json`, for its next run to resume. The import's own temporary files are
`bundle-<random>-partial` and `manifest-<random>-partial` (mkstemp, O_EXCL): they can never have
those names, so an import neither reads, overwrites nor removes them by accident. Once the import has
renamed a blob into place, though, that blob's leftovers are removed on purpose: no seeder resumes a
blob the store holds complete (it downloads only what is missing), so they would only hold disk space
(a `-partial` is allocated at the blob's full size) until Ollama's start-up prune, which a store
imported into while a server runs has turned off (OLLAMA_NOPRUNE). Under the lock no seeder is writing
them. Leftovers of other blobs are left alone: a seeder resumes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

from ansible_collections.aiplatform.ollama.plugins.module_utils.atomic_write import commit, discard, write_temp
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.format import Bundle, BundleError, model_names
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.progress import BundleProgress
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import (
    CHUNK,
    PARTIAL_SUFFIX,
    PROGRESS_SUFFIX,
    OllamaStore,
    StoreError,
    is_disk_full,
)


def _blob_ok(path, digest, size, on_read=None):
    """True when the store's file for a blob exists with the right size and sha256."""
    try:
        if os.path.getsize(path) != size:
            return False
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                hasher.update(chunk)
                if on_read:
                    on_read(len(chunk))
    except OSError:
        return False
    return "sha256:" + hasher.hexdigest() == digest


def _same_file(path, body):
    try:
        with open(path, "rb") as handle:
            return handle.read(len(body) + 1) == body
    except OSError:
        return False


def _check_store(bundle, store, progress):
    """(blobs to write [(digest, size)], models whose manifest to write): every blob the store has is re-hashed."""
    progress.start([(d, s) for d, s in bundle.blobs.items() if os.path.exists(store.blob_path(d))], "checking")
    todo, number = [], 0
    for digest, size in bundle.blobs.items():
        path = store.blob_path(digest)
        if os.path.exists(path):
            number += 1
            progress.blob(number, digest, size)
        if not _blob_ok(path, digest, size, progress.add):
            todo.append((digest, size))
    return todo, [m for m in bundle.models if not _same_file(store.manifest_path(m.ref), m.body)]


def _recheck_store(bundle, store, todo):
    """What is left to write once the lock is held, after a first look without it.

    A blob that was intact then is still intact unless a writer removed it (a seeder checks every blob it
    writes), so its size is enough; one that was to be written is hashed again, a seeder may have written it.
    """
    wanted = {d for d, _s in todo}
    left = [(d, s) for d, s in bundle.blobs.items()
            if (d in wanted and not _blob_ok(store.blob_path(d), d, s))
            or (d not in wanted and not store.blob_complete(d, s))]
    return left, [m for m in bundle.models if not _same_file(store.manifest_path(m.ref), m.body)]


def _import_result(bundle, todo, manifests):
    written = {d for d, _s in todo}
    return {
        "models": [
            {"name": m.ref.full, "digest": m.digest, "size": m.total,
             "action": "imported" if m in manifests else "unchanged"}
            for m in bundle.models
        ],
        "blobs": [d for d, _s in todo],
        "skipped": [d for d in bundle.blobs if d not in written],
        "bytes_written": sum(s for _d, s in todo) + sum(m.size for m in manifests),
        "changed": bool(todo or manifests),
    }


def import_bundle(path, store_root, check_mode=False, lock_timeout=None, progress=None):
    """Import every model of the bundle at `path` into the store at `store_root`; result dict.

    Blobs the store already holds intact are skipped without reading them from the bundle; a store file
    of the wrong size or content is replaced. A manifest identical to the bundle's is left alone. The
    writes happen under the store's lock, waited for at most `lock_timeout` seconds (None: as long as its
    holder runs). `progress` is a BundleProgress.
    """
    store = OllamaStore(store_root)
    progress = progress or BundleProgress()
    with Bundle(path) as bundle:
        progress.what = model_names(m.ref for m in bundle.models)
        todo, manifests = _check_store(bundle, store, progress)
        result = _import_result(bundle, todo, manifests)
        if check_mode:
            progress.start(todo)
            for number, (digest, size) in enumerate(todo, 1):
                progress.blob(number, digest, size)
                bundle.hash_blob(digest, progress.add)  # the content is checked even when nothing is written
            return result
        if not result["changed"]:
            # nothing to write: every file a seeder writes appears by an atomic rename, so a look without
            # the lock saw complete files or none, as ollama_store_model's own check does
            return result
        # the lock creates the store's directories: what did not exist is removed again should the import fail
        created = list(dict.fromkeys(_missing_dirs(store.blobs_dir) + _missing_dirs(store.manifests_dir)))
        inside = [p for p in created if p.startswith(store.root + os.sep)]
        outside = [p for p in created if p not in inside]
        try:
            with store.lock(timeout=lock_timeout, holder=f"ollama_bundle importing {path}", waiting=progress.waiting):
                try:
                    todo, manifests = _recheck_store(bundle, store, todo)
                    result = _import_result(bundle, todo, manifests)
                    if result["changed"]:
                        _free_space(path, store, todo)
                        _write(bundle, store, todo, manifests, progress)
                except BaseException:
                    # while the lock is held no one else writes here: the directories are still empty
                    _undo([], inside)
                    raise
        except BaseException as err:
            # the lock file is gone now; the store's own directory goes too when this import created it
            _undo([], outside)
            if isinstance(err, StoreError):
                if err.kind == "locked":
                    raise BundleError(f"{err}; nothing was written", kind="locked") from None
                raise BundleError(f"{err}; nothing was written", kind="io") from None
            raise
    return result


def _free_space(path, store, todo):
    try:
        store.require_free(sum(s for _d, s in todo), f"importing {path} into {store.root}")
    except StoreError as err:
        raise BundleError(str(err), kind="disk_full") from None


def _write(bundle, store, todo, manifests, progress):
    created = _missing_dirs(store.blobs_dir)
    temps = {}
    progress.start(todo)
    try:
        for path in created:
            os.mkdir(path, 0o755)
        for number, (digest, size) in enumerate(todo, 1):
            progress.blob(number, digest, size)
            # never a seeder's name (sha256-<hex>-partial): see the comment above _blob_ok
            temps[digest] = write_temp(store.blobs_dir, _copy(bundle.blob(digest, progress.add)), "bundle-",
                                       suffix=PARTIAL_SUFFIX)
    except BaseException as err:
        _undo(temps.values(), created)
        if isinstance(err, OSError):
            raise _write_error(err, store.root) from None
        raise
    # every blob is verified: from here on only renames, each of which leaves a consistent store
    try:
        for digest, _size in todo:
            final = store.blob_path(digest)
            commit(temps.pop(digest), final)
            _supersede_leftovers(final)
        for model in manifests:
            # the bundle's manifest bytes, verbatim (its digest is what Ollama lists)
            store.write_manifest(model.ref, model.manifest, body=model.body)
    except (OSError, StoreError) as err:
        _undo(temps.values(), [])
        raise _write_error(err, store.root) from None


def _copy(reader):
    """What write_temp writes for a blob: its member, verified at its end before the file is fsynced."""

    def write(handle):
        for data in iter(lambda: reader.read(CHUNK), b""):
            handle.write(data)
        reader.verify()

    return write


def _supersede_leftovers(final):
    """Remove what an interrupted seed of this blob left, now that the blob is in place (see above _blob_ok)."""
    for leftover in (final + PARTIAL_SUFFIX, final + PARTIAL_SUFFIX + PROGRESS_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)


def _missing_dirs(path):
    """The directories to create for `path`, outermost first: what an undo removes again."""
    out = []
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        out.insert(0, path)
        path = os.path.dirname(path)
    return out


def _undo(temps, created):
    for tmp in temps:
        discard(tmp)
    for path in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _write_error(err, root):
    """The BundleError for an OSError, or the store's StoreError, met while writing into the store."""
    if is_disk_full(err) or getattr(err, "kind", None) == "disk_full":
        return BundleError(f"no space left in {root}: grow the volume or free space, then import again",
                           kind="disk_full")
    if isinstance(err, StoreError):
        return BundleError(f"writing into {root}: {err}", kind="io")
    return BundleError(f"writing into {root}: {err.strerror or err} ({err.filename})", kind="io")
