# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Writing a bundle, from a store or straight from each model's registry.

An export reads each model's manifest either from a store or straight from its registry; both give the
same bundle, byte for byte, for the same model: the manifest member is what the store holds, which for a
model pulled from a registry is Ollama's re-encoding of the registry's manifest (ollama_manifest_bytes,
what ollama_store_model and `ollama pull` write). The blobs then stream into their tar members one after
the other, from the store's files or from the registry (its CDN), hashed on the way; nothing is staged on
disk but the bundle's own temporary file.
"""

from __future__ import annotations

import http.client
import json
import os
import tarfile

from ansible_collections.aiplatform.ollama.plugins.module_utils.atomic_write import write_atomically
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.format import (
    FORMAT,
    INDEX,
    VERSION,
    Bundle,
    BundleError,
    HashingReader,
    blob_member,
    manifest_member,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.progress import BundleProgress
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, ModelRefError, parse_models
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (
    MANIFEST_V2,
    RegistryBlobSource,
    RegistryClient,
    RegistryError,
    content_digest,
    download_fix,
    ollama_manifest_bytes,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import (
    CHUNK,
    PARTIAL_SUFFIX,
    OllamaStore,
    StoreError,
    descriptors,
    digest_hex,
    is_disk_full,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import human_bytes


def _registry_error(err, doing, member=None, **instead):
    return BundleError(f"{doing}: {err}{download_fix(err, **instead)}; no bundle was written", kind="registry",
                       member=member, url=err.url, status=err.status, registry_error=err.kind)


class _BlobSource:
    """Where a blob member's bytes come from, and the BundleError of each way reading them can fail (`failed`
    after `done` bytes, `short` of its size, `corrupt` with the sha256 `found`), each naming the member."""

    def __init__(self, digest, size):
        self.digest, self.size = digest, size
        self.member = blob_member(digest)

    def error(self, text, kind):
        return BundleError(f"{text}; no bundle was written", kind=kind, member=self.member)


class _StoreBlob(_BlobSource):
    """A blob member's bytes from the store's file."""

    def __init__(self, store_root, path, digest, size):
        super().__init__(digest, size)
        self.root, self.path = store_root, path

    def open(self):
        return open(self.path, "rb")

    def failed(self, err, done):
        return self.error(f"reading blob {self.digest} in the store {self.root} after {done} bytes: "
                          f"{getattr(err, 'strerror', None) or err}", "io")

    def short(self, done):
        return self.error(f"blob {self.digest} in the store {self.root} ends after {done} of its {self.size} bytes "
                          "(something changed it during the export): seed the model again", "corrupt")

    def corrupt(self, found):
        return self.error(f"blob {self.digest} in the store {self.root} is corrupt: its content has sha256 {found}. "
                          "Remove the model (ollama_store_model state=absent) and seed it again", "corrupt")


class _RegistryBlob(_BlobSource):
    """A blob member's bytes streamed from the registry of the model that names it (through its CDN redirect)."""

    def __init__(self, client, ref, digest, size):
        super().__init__(digest, size)
        self.client, self.ref = client, ref
        self.where = f"blob {digest} ({human_bytes(size)}) of {ref.short} from registry {client.host}"

    def open(self):
        source = RegistryBlobSource(self.client, self.ref.repository, self.digest, self.size)
        try:
            # the whole blob in one GET: it goes into the tar member in order, as it comes
            handle, _begins, _stops = source.open(0, self.size)
        except RegistryError as err:
            lacks = "the registry lacks a blob its manifest names: push the model to it again"
            raise _registry_error(err, f"downloading {self.where}", member=self.member, not_found=lacks) from None
        return handle

    def failed(self, err, done):
        return self.error(f"downloading {self.where}: the transfer failed after {done} bytes ({err}): run again "
                          "(the export starts over)", "registry")

    def short(self, done):
        return self.error(f"downloading {self.where}: the registry sent {done} of its {self.size} bytes (the "
                          "connection broke off, or the registry's copy is truncated): run again, or repair the "
                          "registry's copy (push the model again)", "corrupt")

    def corrupt(self, found):
        return self.error(f"{self.where} failed verification: its content has sha256 {found}, not {self.digest}. The "
                          "registry (or a proxy or CDN in between) served corrupt data. Repair the registry's copy "
                          "(push the model again) and run again", "corrupt")


class _ExactReader:
    """The bytes of a blob source for tarfile, which takes a read shorter than asked for as the end: every read
    is filled as far as the source goes, a failure or an early end is the source's BundleError."""

    def __init__(self, source, handle):
        self.source = source
        self.handle = handle
        self.done = 0

    def read(self, amount=-1):
        amount = CHUNK if amount is None or amount < 0 else amount
        parts, want = [], amount
        while want > 0:
            try:
                data = self.handle.read(want)
            except (OSError, http.client.HTTPException) as err:
                raise self.source.failed(err, self.done) from None
            if not data:
                break
            parts.append(data)
            want -= len(data)
            self.done += len(data)
        if want and self.done < self.source.size:
            raise self.source.short(self.done)
        return b"".join(parts)


def _parse_refs(names, login=False):
    try:
        return parse_models(names, "models", login=login, verb="export")
    except ModelRefError as err:
        raise BundleError(str(err), kind="invalid") from None


def _index_entry(ref, body, media_type, own):
    return {
        "name": ref.full,
        "manifest": manifest_member(ref),
        "digest": content_digest(body),
        "size": len(body),
        "media_type": media_type or MANIFEST_V2,
        "blobs": [{"digest": d, "size": s} for d, s in own],
    }


def _plan(entries):
    """[(ref, manifest body, manifest dict, own blobs [(digest, size)], blob source factory)] -> (index, members).

    A blob two models share is carried once, from the first model that names it."""
    models, blobs, members, manifests = [], {}, [], []
    for ref, body, manifest, own, source in entries:
        for digest, size in own:
            if digest not in blobs:
                blobs[digest] = size
                members.append((blob_member(digest), source(digest, size), size, digest))
        manifests.append((manifest_member(ref), body, len(body), None))
        models.append(_index_entry(ref, body, manifest.get("mediaType"), own))
    index = {
        "format": FORMAT,
        "version": VERSION,
        "models": models,
        "blobs": [{"digest": d, "size": s} for d, s in blobs.items()],
    }
    return index, members + manifests


def plan_export(store_root, names):
    """Read the store's manifests of `names` -> (index dict, [(member, source, size, digest)]).

    `source` is the manifest's bytes (digest None) or a blob source (open, failed, short, corrupt)."""
    store = OllamaStore(store_root)
    entries = []
    for ref in _parse_refs(names):
        try:
            local = store.require_manifest(ref)
        except StoreError as err:
            if err.kind != "absent":
                raise BundleError(str(err), kind="io") from None
            raise BundleError(
                f"model {err}: seed it first (ollama_store_model or ollama pull), export it from its registry "
                "(leave store unset) or check the name",
                kind="missing",
            ) from None
        missing = store.missing(local.manifest)
        if missing:
            raise BundleError(
                "model {} in {} is incomplete, blob(s) {} are missing or of the wrong size: seed it again".format(
                    ref.short, store.root, ", ".join(d for d, _s in missing)
                ),
                kind="missing",
            )
        with open(local.path, "rb") as handle:
            body = handle.read()
        # a bundle always spells a digest sha256:<lower-case hex>, whatever the manifest had
        own = [("sha256:" + digest_hex(d), s) for d, s in descriptors(local.manifest)]
        entries.append((ref, body, local.manifest, own,
                        lambda digest, size: _StoreBlob(store.root, store.blob_path(digest), digest, size)))
    return _plan(entries)


def registry_refs(names, login=False):
    """`names` as references, each once; with a registry login they must all be of one registry."""
    return _parse_refs(names, login=login)


def _remote_blobs(manifest, ref, host):
    """The manifest's config and layers as [(sha256:<lower hex>, size)]; a registry's manifest is not trusted."""
    try:
        own = [("sha256:" + digest_hex(d), int(s)) for d, s in descriptors(manifest)]
    except (StoreError, TypeError, ValueError) as err:
        raise BundleError(
            f"registry {host} sent a manifest for {ref.short} with a layer that has no valid digest or size ({err}): "
            "repair the model in that registry (push it again); no bundle was written",
            kind="registry",
        ) from None
    if any(size < 0 for _d, size in own):
        raise BundleError(f"registry {host} sent a manifest for {ref.short} with a negative layer size: repair the "
                          "model in that registry (push it again); no bundle was written", kind="registry")
    return own


def plan_registry_export(names, params):
    """Read the manifests of `names` from their registries -> (index dict, members), as plan_export; no blob is
    read. `params` are the module's registry options (RegistryClient.from_params): one client per registry."""
    refs = registry_refs(names, login=bool(params.get("registry_username")))
    clients, entries = {}, []
    for ref in refs:
        if ref.host not in clients:
            clients[ref.host] = RegistryClient.from_params(ref.host, params)
        client = clients[ref.host]
        try:
            remote = client.resolve(ref.repository, ref.tag)
        except RegistryError as err:
            # the registry's message names the registry and the model
            raise _registry_error(err, f"reading the manifest of {ref.short}") from None
        manifest = remote["manifest"]
        own = _remote_blobs(manifest, ref, ref.host)
        # what a store holds for this model, and so what an import of the bundle writes
        body = ollama_manifest_bytes(manifest)
        entries.append((ref, body, manifest, own,
                        lambda digest, size, c=client, r=ref: _RegistryBlob(c, r, digest, size)))
    return _plan(entries)


def _index_bytes(index):
    return json.dumps(index, indent=1, sort_keys=True).encode("utf-8") + b"\n"


def _existing_index(path):
    """The index of the bundle already at path, None when there is none; BundleError if path is something else."""
    if not os.path.lexists(path):
        return None
    if os.path.isdir(path) or not os.path.isfile(path):
        raise BundleError(f"{path} exists and is not a file: path names the bundle file to write", kind="exists")
    try:
        with Bundle(path) as existing:
            return existing.read_index()
    except BundleError:
        pass
    raise BundleError(
        f"{path} exists and is not a valid model bundle: it is not replaced, remove it or choose another path",
        kind="exists",
    )


def _tarinfo(name, size):
    # fixed owner, mode and time: the same models always give the same bytes
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uname = info.gname = ""
    return info


def export_bundle(store_root, names, path, check_mode=False, progress=None, registry=None):
    """Write the bundle of `names` to `path`, from the store at `store_root` or, when it is None, straight from
    each model's registry with the registry options `registry` (the module's params); result dict for the module.

    An existing bundle with exactly this index is left alone (idempotent: from a registry, only the manifests
    are read to know); a file there that is not a bundle is never replaced. Only the files the manifests name
    are read from a store (its directory is never listed), so a seeder's `-partial` files and their progress
    files, in the store at the same time, are neither read nor carried. Check mode reads no blob. `progress` is
    a BundleProgress; it counts the bytes read from the store or downloaded.
    """
    progress = progress or BundleProgress()
    if store_root is None:
        index, members = plan_registry_export(names, registry or {})
    else:
        index, members = plan_export(store_root, names)
    progress.what = ", ".join(ModelRef.parse(m["name"]).short for m in index["models"])
    result = {
        "models": [{"name": m["name"], "digest": m["digest"], "size": sum(b["size"] for b in m["blobs"])}
                   for m in index["models"]],
        "blobs": [b["digest"] for b in index["blobs"]],
        "skipped": [],
        "bytes_written": 0,
        "changed": False,
    }
    if _existing_index(path) == index:
        result["skipped"] = result["blobs"]
        result["blobs"] = []
        return result
    body = _index_bytes(index)
    total = 1024 + 512 * 2 * (len(members) + 1) + len(body) + sum(size for _n, _s, size, _d in members)
    result["changed"] = True
    result["bytes_written"] = total  # an upper bound in check mode, the file's size otherwise
    if check_mode:
        return result
    progress.start([(d, size) for _n, _s, size, d in members if d is not None])
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise BundleError(f"the directory of {path} does not exist: create it first", kind="io")

    def write(raw):
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tarinfo(INDEX, len(body)), _BytesReader(body))
            number = 0
            for name, source, size, digest in members:
                if digest is None:
                    tar.addfile(_tarinfo(name, size), _BytesReader(source))
                    continue
                number += 1
                progress.blob(number, digest, size)
                _add_blob(tar, name, source, progress)

    try:
        # whatever stops the export (a corrupt blob, a broken download, Ctrl-C), no partial bundle stays; the
        # temporary file is hidden beside the bundle, on its filesystem for the rename
        write_atomically(path, write, "." + os.path.basename(path) + ".", suffix=PARTIAL_SUFFIX, tmp_dir=directory)
    except OSError as err:
        if is_disk_full(err):
            raise BundleError(f"no space left writing {path}: free space there; no bundle was written",
                              kind="disk_full") from None
        raise BundleError(f"writing {path}: {err.strerror or err}; no bundle was written", kind="io") from None
    result["bytes_written"] = os.path.getsize(path)
    return result


def _add_blob(tar, name, source, progress):
    """Stream one blob from its source into its tar member, hashed on the way; BundleError naming it if wrong."""
    handle = source.open()
    try:
        reader = HashingReader(_ExactReader(source, handle), source.digest, source.size, "", name, progress.add)
        # addfile copies exactly `size` bytes: a source that has fewer raises (_ExactReader.short)
        tar.addfile(_tarinfo(name, source.size), reader)
        if reader.verify_quietly():
            raise source.corrupt(reader.found)
    finally:
        handle.close()


class _BytesReader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def read(self, amount=-1):
        end = len(self.data) if amount is None or amount < 0 else self.pos + amount
        chunk = self.data[self.pos:end]
        self.pos += len(chunk)
        return chunk
