# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Model bundles: Ollama models carried as ONE tar file into a site without registry access.

A bundle is an uncompressed tar holding the store's own layout plus an index:

    index.json                                        written first: format, models, blobs
    blobs/sha256-<hex>                                one member per blob, each once
    manifests/<registry>/<namespace>/<model>/<tag>    the store's manifest file, byte for byte

`index.json` is {"format": FORMAT, "version": VERSION, "models": [...], "blobs": [...]}; each model
has its full name, the path and sha256/size of its manifest file and the digest/size of every blob it
names; `blobs` lists every blob member once.

An export reads the models from a store directory or straight from their registries; both give the same
bytes for the same models (see the export section below).

An import trusts nothing in the file. Before a byte is written it checks every member header
(regular files and directories only, relative names without `..`, only the names the index lists,
the sizes it gives, none twice) and every manifest (its sha256, and that it names exactly the blobs
the index gives it). Blobs are then hashed while they stream into temporary `-partial` files in the
store's blobs directory; only when every one matched its name are they renamed into place, and the
manifests are written last. Any failure removes what the import created, so the store is as before.
`-partial` is also what Ollama's start-up prune removes, should the machine die in between.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import tarfile
import tempfile
from urllib.error import HTTPError
from urllib.parse import urljoin, urlsplit

from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_download import fsync_dir
from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, ModelRefError, parse_models
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_http import origin
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
    PROGRESS_SUFFIX,
    OllamaStore,
    StoreError,
    descriptors,
    digest_hex,
    is_disk_full,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import (
    DownloadProgress,
    ProgressFile,
    human_bytes,
)

FORMAT = "aiplatform.ollama.model-bundle"
VERSION = 1
INDEX = "index.json"
# an index or manifest larger than this is not one the exporter wrote: refuse before reading it
MAX_INDEX_BYTES = 16 << 20
MAX_MANIFEST_BYTES = 1 << 20
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # fullmatch: no trailing newline
REBUILD = "export the bundle again (ollama_bundle state=exported) from a complete store"


class BundleError(CollectionError):
    """`kind`: unsafe (a member that could write outside the store or is not a plain file), invalid (not
    a bundle, or members that disagree with its index), corrupt (content that does not match its
    digest), missing (a model not in the store), exists, disk_full, io, registry."""

    default_kind = "invalid"

    def __init__(self, msg, kind=None, member=None, **context):
        super().__init__(msg, kind=kind, member=member, **context)


# -- progress -------------------------------------------------------------------------------------


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


def _names(refs):
    return ", ".join(ref.short for ref in refs)


# -- reading a bundle -----------------------------------------------------------------------------


def unsafe_name(name):
    """Why a member name could not be used inside the store, or None when it is a plain relative path."""
    if not name:
        return "has an empty name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path"
    if "\\" in name or "\x00" in name:
        return "has a backslash or NUL in its name"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "has a '..' path component"
    if any(part in ("", ".") for part in parts):
        return "has an empty or '.' path component"
    return None


def _kind_of(member):
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    if member.issparse():
        return "a sparse file"
    if member.isdir() or member.isreg():
        return None
    return f"of the unknown tar type {member.type!r}"


def _refuse(path, member, why, kind="invalid", fix=REBUILD):
    where = f"member {member!r} of " if member else ""
    return BundleError(f"{where}bundle {path} {why}: {fix}; nothing was written", kind=kind, member=member)


def _digest(value, what, path):
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise _refuse(path, INDEX, f"gives {what} the digest {value!r}, not sha256:<64 lower-case hex digits>")
    return value


def _size(value, what, path):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(path, INDEX, f"gives {what} the size {value!r}, not a whole number of bytes")
    return value


class BundleModel:
    """One model of a validated bundle: its reference, manifest member, manifest bytes and blobs."""

    def __init__(self, ref, member, digest, size, blobs, media_type):
        self.ref = ref
        self.member = member
        self.digest = digest
        self.size = size
        self.blobs = blobs  # [(digest, size)]
        self.media_type = media_type
        self.body = None
        self.manifest = None

    @property
    def total(self):
        return sum(size for _d, size in self.blobs)


def parse_index(data, path):
    """index.json bytes -> ([BundleModel], {blob digest: size}); BundleError naming what is wrong."""
    try:
        index = json.loads(data)
    except ValueError:
        raise _refuse(path, INDEX, "is not JSON") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise _refuse(path, INDEX, f"is not the index of a model bundle (no \"format\": \"{FORMAT}\")")
    version = index.get("version")
    if version != VERSION:
        raise _refuse(
            path,
            INDEX,
            f"has format version {version!r}; this collection reads version {VERSION}",
            fix="export it with the same collection version that imports it",
        )
    blobs = {}
    for item in index.get("blobs") if isinstance(index.get("blobs"), list) else [None]:
        if not isinstance(item, dict):
            raise _refuse(path, INDEX, "has a 'blobs' entry that is not an object with digest and size")
        digest = _digest(item.get("digest"), "a blob", path)
        if digest in blobs:
            raise _refuse(path, INDEX, f"lists blob {digest} twice")
        blobs[digest] = _size(item.get("size"), f"blob {digest}", path)
    models, seen = [], set()
    entries = index.get("models")
    if not isinstance(entries, list) or not entries:
        raise _refuse(path, INDEX, "lists no models")
    for entry in entries:
        if not isinstance(entry, dict):
            raise _refuse(path, INDEX, "has a 'models' entry that is not an object")
        try:
            ref = ModelRef.parse(entry.get("name"))
        except ModelRefError as err:
            raise _refuse(path, INDEX, f"names a model Ollama would refuse: {err}") from None
        if ref.key() in seen:
            raise _refuse(path, INDEX, f"lists model {ref.full} twice")
        seen.add(ref.key())
        member = manifest_member(ref)
        if entry.get("manifest") != member:
            raise _refuse(path, INDEX, f"puts the manifest of {ref.full} at {entry.get('manifest')!r}, not {member!r}")
        own = []
        for item in entry.get("blobs") if isinstance(entry.get("blobs"), list) else [None]:
            if not isinstance(item, dict):
                raise _refuse(path, INDEX, f"has a blob entry of {ref.full} that is not an object")
            digest = _digest(item.get("digest"), f"a blob of {ref.full}", path)
            size = _size(item.get("size"), f"blob {digest}", path)
            if blobs.get(digest) != size:
                raise _refuse(path, INDEX, f"gives {ref.full} blob {digest} of {size} bytes, which 'blobs' lacks")
            own.append((digest, size))
        models.append(
            BundleModel(
                ref,
                member,
                _digest(entry.get("digest"), f"the manifest of {ref.full}", path),
                _size(entry.get("size"), f"the manifest of {ref.full}", path),
                own,
                entry.get("media_type") or MANIFEST_V2,
            )
        )
    used = {d for model in models for d, _s in model.blobs}
    for digest in blobs:
        if digest not in used:
            raise _refuse(path, INDEX, f"lists blob {digest}, which no model uses")
    return models, blobs


def manifest_member(ref):
    return f"manifests/{ref.host}/{ref.namespace}/{ref.model}/{ref.tag}"


def blob_member(digest):
    return "blobs/sha256-" + digest.split(":", 1)[1]


def _parents(name):
    out = []
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        out.append(name)
    return out


class Bundle:
    """A bundle file opened and validated: every header, the index and every manifest.

    Blob contents are checked when they are read (`blob`), by whoever streams them.
    """

    def __init__(self, path):
        self.path = path
        self.models = []
        self.blobs = {}
        self._members = {}
        try:
            self.size = os.path.getsize(path)
            self.tar = tarfile.open(path, "r:")  # noqa: SIM115  closed by close()
        except FileNotFoundError:
            raise BundleError(
                f"bundle {path} does not exist: check path, or export one first (state=exported)", kind="invalid"
            ) from None
        except IsADirectoryError:
            raise BundleError(f"bundle {path} is a directory: path names the bundle file", kind="invalid") from None
        except tarfile.TarError as err:
            raise _refuse(
                path, None, f"is not an uncompressed tar file ({err})", fix="decompress it if it was compressed, or "
                + REBUILD
            ) from None
        except OSError as err:
            raise BundleError(f"cannot read bundle {path}: {err.strerror or err}", kind="io") from None
        try:
            self._validate()
        except BaseException:
            self.close()
            raise

    def close(self):
        self.tar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _validate(self):
        path = self.path
        try:
            members = self.tar.getmembers()
        except tarfile.TarError as err:
            raise _refuse(path, None, f"is damaged or truncated ({err})") from None
        # 1. shape of every member, before any content is believed
        for member in members:
            why = unsafe_name(member.name)
            if why:
                raise _refuse(path, member.name, why, kind="unsafe")
            odd = _kind_of(member)
            if odd:
                raise _refuse(path, member.name, f"is {odd}; a bundle holds only regular files", kind="unsafe")
            name = member.name.rstrip("/")
            if name in self._members:
                raise _refuse(path, name, "appears twice; a later copy would silently replace the first")
            self._members[name] = member
            if member.isreg() and member.offset_data + member.size > self.size:
                raise _refuse(path, name, "is cut short: the file ends inside it (an incomplete copy?)")
        # 2. the index, then every name, type and size against it
        index = self._members.get(INDEX)
        if index is None or not index.isreg():
            raise _refuse(path, None, f"has no {INDEX}: it is not a model bundle")
        if index.size > MAX_INDEX_BYTES:
            raise _refuse(path, INDEX, f"is {index.size} bytes, more than any index ({MAX_INDEX_BYTES})")
        self.models, self.blobs = parse_index(self._read(index), path)
        expected = {INDEX: None}
        expected.update({blob_member(d): s for d, s in self.blobs.items()})
        expected.update({m.member: m.size for m in self.models})
        directories = {parent for name in expected for parent in _parents(name)}
        for name, member in self._members.items():
            if member.isdir():
                if name not in directories:
                    raise _refuse(path, name, "is a directory the index does not account for")
                continue
            if name not in expected:
                raise _refuse(path, name, "is not named in the index (only index.json, its manifests and blobs)")
            if expected[name] is not None and member.size != expected[name]:
                raise _refuse(
                    path, name, f"is {member.size} bytes, the index says {expected[name]}", kind="corrupt"
                )
        for name in expected:
            if name not in self._members:
                raise _refuse(path, name, "is listed in the index but missing from the file")
        # 3. every manifest: the bytes the index promises, naming exactly the blobs it lists
        for model in self.models:
            if model.size > MAX_MANIFEST_BYTES:
                raise _refuse(path, model.member, f"is {model.size} bytes, more than any manifest")
            body = self._read(self._members[model.member])
            found = content_digest(body)
            if found != model.digest:
                raise _refuse(path, model.member, f"has sha256 {found}, the index says {model.digest}", "corrupt")
            try:
                manifest = json.loads(body)
            except ValueError:
                manifest = None
            if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
                raise _refuse(path, model.member, "is not an image manifest", kind="corrupt")
            try:
                named = sorted(descriptors(manifest))
            except (TypeError, ValueError):
                raise _refuse(path, model.member, "has a layer without a valid size", kind="corrupt") from None
            if named != sorted(model.blobs):
                raise _refuse(path, model.member, f"names other blobs than the index gives {model.ref.full}")
            model.body, model.manifest = body, manifest

    def _read(self, member):
        handle = self.tar.extractfile(member)
        try:
            data = handle.read()
        finally:
            handle.close()
        if len(data) != member.size:
            raise _refuse(self.path, member.name, "is cut short", kind="corrupt")
        return data

    def blob(self, digest, on_read=None):
        """A reader of one blob member that checks its sha256 when it reaches the end; `on_read(count)` gets
        the bytes of every read."""
        name = blob_member(digest)
        return HashingReader(self.tar.extractfile(self._members[name]), digest, self.blobs[digest], self.path, name,
                             on_read)

    def hash_blob(self, digest, on_read=None):
        """Read one blob member to its end, verifying it (check mode)."""
        reader = self.blob(digest, on_read)
        while reader.read(CHUNK):
            pass
        reader.verify()


class HashingReader:
    """File-like over a tar member: read() hashes; the read that returns b'' raises if the digest is wrong."""

    def __init__(self, handle, digest, size, path, name, on_read=None):
        self.handle = handle
        self.digest = digest
        self.size = size
        self.path = path
        self.name = name
        self.on_read = on_read
        self.hasher = hashlib.sha256()
        self.done = 0
        self.found = None

    def read(self, amount=-1):
        try:
            data = self.handle.read(amount if amount is not None and amount >= 0 else CHUNK)
        except tarfile.TarError as err:
            raise _refuse(self.path, self.name, f"cannot be read to its end ({err})", kind="corrupt") from None
        if data:
            self.hasher.update(data)
            self.done += len(data)
            if self.on_read:
                # the one place every byte of an export, import or push passes: progress is counted here
                self.on_read(len(data))
        return data

    def verify(self):
        """Raise BundleError(corrupt) unless exactly `size` bytes with the named sha256 were read."""
        if self.verify_quietly():
            raise _refuse(
                self.path,
                self.name,
                f"has sha256 {self.found} ({self.done} bytes), not the {self.digest} its name gives: the file was "
                "damaged in transfer",
                kind="corrupt",
                fix="copy the bundle again (compare its sha256 with the source's) or " + REBUILD,
            )

    def verify_quietly(self):
        """True when the content read does not match (verify() without the bundle's message)."""
        self.found = "sha256:" + self.hasher.hexdigest()
        return self.done != self.size or self.found != self.digest

    def close(self):
        self.handle.close()


# -- export ---------------------------------------------------------------------------------------
#
# An export reads each model's manifest either from a store or straight from its registry; both give the
# same bundle, byte for byte, for the same model: the manifest member is what the store holds, which for a
# model pulled from a registry is Ollama's re-encoding of the registry's manifest (ollama_manifest_bytes,
# what ollama_store_model and `ollama pull` write). The blobs then stream into their tar members one after
# the other, from the store's files or from the registry (its CDN), hashed on the way; nothing is staged on
# disk but the bundle's own temporary file.

def _registry_error(err, doing, member=None, **instead):
    return BundleError(f"{doing}: {err}{download_fix(err, **instead)}; no bundle was written", kind="registry",
                       member=member, url=err.url, status=err.status, registry_error=err.kind)


class _StoreBlob:
    """A blob member's bytes from the store's file."""

    def __init__(self, store_root, path, digest, size):
        self.root, self.path, self.digest, self.size = store_root, path, digest, size
        self.member = blob_member(digest)

    def open(self):
        return open(self.path, "rb")

    def failed(self, err, done):
        return BundleError(f"reading blob {self.digest} in the store {self.root} after {done} bytes: "
                           f"{getattr(err, 'strerror', None) or err}; no bundle was written", kind="io",
                           member=self.member)

    def short(self, done):
        return BundleError(
            f"blob {self.digest} in the store {self.root} ends after {done} of its {self.size} bytes (something "
            "changed it during the export): seed the model again; no bundle was written",
            kind="corrupt", member=self.member,
        )

    def corrupt(self, found):
        return BundleError(
            f"blob {self.digest} in the store {self.root} is corrupt: its content has sha256 {found}. Remove the "
            "model (ollama_store_model state=absent) and seed it again; no bundle was written",
            kind="corrupt", member=self.member,
        )


class _RegistryBlob:
    """A blob member's bytes streamed from the registry of the model that names it (through its CDN redirect)."""

    def __init__(self, client, ref, digest, size):
        self.client, self.ref, self.digest, self.size = client, ref, digest, size
        self.member = blob_member(digest)
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
        return BundleError(
            f"downloading {self.where}: the transfer failed after {done} bytes ({err}): run again (the "
            "export starts over); no bundle was written",
            kind="registry", member=self.member,
        )

    def short(self, done):
        return BundleError(
            f"downloading {self.where}: the registry sent {done} of its {self.size} bytes (the connection broke "
            "off, or the registry's copy is truncated): run again, or repair the registry's copy (push the model "
            "again); no bundle was written",
            kind="corrupt", member=self.member,
        )

    def corrupt(self, found):
        return BundleError(
            f"{self.where} failed verification: its content has sha256 {found}, not {self.digest}. The registry "
            "(or a proxy or CDN in between) served corrupt data. Repair the registry's copy (push the model "
            "again) and run again; no bundle was written",
            kind="corrupt", member=self.member,
        )


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
            local = store.read_manifest(ref)
        except StoreError as err:
            raise BundleError(f"reading the manifest of {ref.short} in {store.root}: {err}", kind="io") from None
        if local is None:
            raise BundleError(
                f"model {ref.short} is not in the store {store.root} (no {store.manifest_path(ref)}): seed it first "
                "(ollama_store_model or ollama pull), export it from its registry (leave store unset) or check "
                "the name",
                kind="missing",
            )
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
            return parse_index_bytes(existing)
    except BundleError:
        pass
    raise BundleError(
        f"{path} exists and is not a valid model bundle: it is not replaced, remove it or choose another path",
        kind="exists",
    )


def parse_index_bytes(bundle):
    return json.loads(bundle._read(bundle._members[INDEX]))


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
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=PARTIAL_SUFFIX, dir=directory)
        with os.fdopen(fd, "wb") as raw:
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
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        if is_disk_full(err):
            raise BundleError(f"no space left writing {path}: free space there; no bundle was written",
                              kind="disk_full") from None
        raise BundleError(f"writing {path}: {err.strerror or err}; no bundle was written", kind="io") from None
    finally:
        if tmp:
            # whatever stopped the export (a corrupt blob, a broken download, Ctrl-C), no partial bundle stays
            with contextlib.suppress(OSError):
                os.remove(tmp)
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


# -- import into a store --------------------------------------------------------------------------
#
# An import writes into the store under the store's lock (ollama_store.StoreLock), the one every
# ollama_store_model writer takes, so an import and a seed of the same store never interleave. The
# bundle is validated before the lock is taken (it is the import's own file); what the store already
# holds is looked at again under the lock, since a seeder may have written or removed blobs meanwhile.
#
# A seeder killed mid-download leaves `blobs/sha256-<hex>-partial` and its parts' progress,
# `sha256-<hex>-partial.json`, for its next run to resume. The import's own temporary files are
# `bundle-<random>-partial` and `manifest-<random>-partial` (mkstemp, O_EXCL): they can never have
# those names, so an import neither reads, overwrites nor removes them by accident. Once the import has
# renamed a blob into place, though, that blob's leftovers are removed on purpose: no seeder resumes a
# blob the store holds complete (it downloads only what is missing), so they would only hold disk space
# (a `-partial` is allocated at the blob's full size) until Ollama's start-up prune, which a store
# imported into while a server runs has turned off (OLLAMA_NOPRUNE). Under the lock no seeder is writing
# them. Leftovers of other blobs are left alone: a seeder resumes them.


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
        progress.what = _names(m.ref for m in bundle.models)
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
    free = _free_bytes(store)
    needed = sum(s for _d, s in todo)
    if free is not None and needed > free:
        raise BundleError(
            f"importing {path} into {store.root} needs {needed} bytes for blobs, its filesystem has {free} "
            "free: grow the volume or free space; nothing was written",
            kind="disk_full",
        )


def _free_bytes(store):
    try:
        return store.free_bytes()
    except OSError:
        return None


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
            fd, temps[digest] = tempfile.mkstemp(prefix="bundle-", suffix=PARTIAL_SUFFIX, dir=store.blobs_dir)
            reader = bundle.blob(digest, progress.add)
            with os.fdopen(fd, "wb") as handle:
                for data in iter(lambda r=reader: r.read(CHUNK), b""):
                    handle.write(data)
                reader.verify()
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temps[digest], 0o644)
    except BaseException as err:
        _undo(temps.values(), created)
        if isinstance(err, OSError):
            raise _os_error(err, store.root) from None
        raise
    # every blob is verified: from here on only renames, each of which leaves a consistent store
    try:
        for digest, _size in todo:
            final = store.blob_path(digest)
            os.replace(temps.pop(digest), final)
            _supersede_leftovers(final)
        fsync_dir(store.blobs_dir)
        for model in manifests:
            _write_manifest(store, model)
    except OSError as err:
        _undo(temps.values(), [])
        raise _os_error(err, store.root) from None


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
        with contextlib.suppress(OSError):
            os.remove(tmp)
    for path in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _os_error(err, root):
    if is_disk_full(err):
        return BundleError(f"no space left in {root}: grow the volume or free space, then import again",
                           kind="disk_full")
    return BundleError(f"writing into {root}: {err.strerror or err} ({err.filename})", kind="io")


def _write_manifest(store, model):
    """The bundle's manifest bytes, verbatim (its digest is what Ollama lists), through a rename."""
    if store.missing(model.manifest):
        raise OSError(f"blobs of {model.ref.full} are missing after the import")
    path = store.manifest_path(model.ref)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="manifest-", suffix=PARTIAL_SUFFIX, dir=store.blobs_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(model.body)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    fsync_dir(os.path.dirname(path))


# -- push into a registry -------------------------------------------------------------------------


class _WithBody:
    """The client's transport with a request body: RegistryClient.open, its auth and errors, for POST/PUT."""

    def __init__(self, http, data):
        self.http = http
        self.data = data

    def open(self, method, url, **kwargs):
        return self.http.open(method, url, data=self.data, **kwargs)


class PushClient(RegistryClient):
    """RegistryClient that also uploads (OCI distribution: monolithic blob upload, manifest PUT)."""

    _basic_used = False

    def _basic(self):
        self._basic_used = True
        return super()._basic()

    def send(self, path, scope, method="GET", data=None, headers=None):
        extra = dict(headers or {})
        if self._basic_used and not self._token.get(scope):
            # a streamed body cannot be sent twice: answer a basic challenge before it is asked again
            extra["Authorization"] = self._basic()
        saved = self.http
        if data is not None:
            self.http = _WithBody(saved, data)
        try:
            return self.open(path, scope=scope, method=method, extra_headers=extra)
        finally:
            self.http = saved

    def _fail(self, err, doing):
        detail = ""
        with contextlib.suppress(Exception):
            detail = ": " + err.read().decode("utf-8", "replace")[:300]
        return RegistryError(f"registry {self.host} answered HTTP {err.code} {doing}{detail}", status=err.code)

    def has_blob(self, repository, digest):
        scope = f"repository:{repository}:pull,push"
        try:
            self.send(f"/v2/{repository}/blobs/{digest}", scope, method="HEAD").close()
        except HTTPError as err:
            if err.code == 404:
                return False
            raise self._fail(err, f"to HEAD blob {digest} of {repository}") from None
        return True

    def manifest_digest(self, repository, tag, media_type):
        scope = f"repository:{repository}:pull,push"
        try:
            resp = self.send(f"/v2/{repository}/manifests/{tag}", scope, method="HEAD",
                             headers={"Accept": media_type})
        except HTTPError as err:
            if err.code == 404:
                return None
            raise self._fail(err, f"to HEAD the manifest of {repository}:{tag}") from None
        with contextlib.closing(resp):
            return resp.headers.get("Docker-Content-Digest")

    def upload_blob(self, repository, digest, size, stream):
        scope = f"repository:{repository}:pull,push"
        try:
            resp = self.send(f"/v2/{repository}/blobs/uploads/", scope, method="POST", data=b"")
        except HTTPError as err:
            raise self._fail(err, f"starting the upload of blob {digest} to {repository}") from None
        with contextlib.closing(resp):
            location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"registry {self.host} started an upload without a Location header", kind="protocol")
        target = urljoin(self.base_url + f"/v2/{repository}/blobs/uploads/", location)
        if origin(target) != origin(self.base_url):
            # the credentials belong to the registry: an upload elsewhere is not what was asked for
            raise RegistryError(
                f"registry {self.host} sent the upload of {digest} to another host ({origin(target)}), which is not "
                "supported: push to that host directly",
                kind="protocol",
            )
        parts = urlsplit(target)
        query = (parts.query + "&" if parts.query else "") + "digest=" + digest
        try:
            self.send(f"{parts.path}?{query}", scope, method="PUT", data=stream,
                      headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)}).close()
        except HTTPError as err:
            raise self._fail(err, f"to the upload of blob {digest} to {repository}") from None

    def put_manifest(self, repository, tag, body, media_type):
        scope = f"repository:{repository}:pull,push"
        try:
            resp = self.send(f"/v2/{repository}/manifests/{tag}", scope, method="PUT", data=body,
                             headers={"Content-Type": media_type, "Content-Length": str(len(body))})
        except HTTPError as err:
            raise self._fail(err, f"to the manifest of {repository}:{tag}") from None
        with contextlib.closing(resp):
            return resp.headers.get("Docker-Content-Digest")


def push_bundle(path, client, check_mode=False, progress=None):
    """Push every model of the bundle into the registry of `client` (a PushClient); result dict.

    Each model goes to `<registry>/<namespace>/<model>:<tag>`. Blobs the repository has are skipped,
    the others are uploaded (the registry checks each digest too), the manifest last, so the
    registry never serves a manifest whose blobs are missing. What is there is asked first, so that the
    progress has its total before the first byte is sent. `progress` is a BundleProgress.
    """
    progress = progress or BundleProgress()
    with Bundle(path) as bundle:
        progress.what = _names(m.ref for m in bundle.models)
        result = {"models": [], "blobs": [], "skipped": [], "bytes_written": 0, "changed": False}
        plan, queued = [], set()
        for model in bundle.models:
            repository, tag = model.ref.repository, model.ref.tag
            entry = {"name": f"{client.host}/{repository}:{tag}", "digest": model.digest, "size": model.total,
                     "action": "unchanged"}
            result["models"].append(entry)
            if client.manifest_digest(repository, tag, model.media_type) == model.digest:
                result["skipped"].extend(d for d, _s in model.blobs)
                continue
            entry["action"] = "pushed"
            result["changed"] = True
            uploads = []
            for digest, size in model.blobs:
                # a blob two models of one repository share is uploaded once
                if (repository, digest) in queued or client.has_blob(repository, digest):
                    result["skipped"].append(digest)
                    continue
                queued.add((repository, digest))
                uploads.append((digest, size))
                result["blobs"].append(digest)
                result["bytes_written"] += size
            result["bytes_written"] += len(model.body)
            plan.append((model, uploads))
        progress.start([blob for _m, uploads in plan for blob in uploads])
        number = 0
        for model, uploads in plan:
            for digest, size in uploads:
                number += 1
                progress.blob(number, digest, size)
                if check_mode:
                    bundle.hash_blob(digest, progress.add)
                    continue
                _upload(bundle, client, model.ref.repository, digest, size, progress)
            if not check_mode:
                client.put_manifest(model.ref.repository, model.ref.tag, model.body, model.media_type)
        return result


def _upload(bundle, client, repository, digest, size, progress):
    reader = bundle.blob(digest, progress.add)
    try:
        client.upload_blob(repository, digest, size, reader)
    except RegistryError:
        # the registry refuses content that does not match the digest: say which member is damaged
        if reader.done == size:
            reader.verify()
        raise
    reader.verify()
