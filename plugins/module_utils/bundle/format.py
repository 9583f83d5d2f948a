# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The bundle format, and a bundle file opened and checked before anything believes its content.

Model bundles carry Ollama models as ONE tar file into a site without registry access. This package keeps
one job a file: `format` (this file), `export` (writing one from a store or from registries), `importer`
(into a store, under its lock), `push` (into a registry) and `progress` (what the action plugin prints
while any of them runs). The module ollama_bundle calls them; `__init__.py` stays empty, as ansible-test
requires of module_utils packages.

A bundle is an uncompressed tar holding the store's own layout plus an index:

    index.json                                        written first: format, models, blobs
    blobs/sha256-<hex>                                one member per blob, each once
    manifests/<registry>/<namespace>/<model>/<tag>    the store's manifest file, byte for byte

`index.json` is {"format": FORMAT, "version": VERSION, "models": [...], "blobs": [...]}; each model
has its full name, the path and sha256/size of its manifest file and the digest/size of every blob it
names; `blobs` lists every blob member once.

A reader trusts nothing in the file. Before a byte is written anywhere, Bundle checks every member header
(regular files and directories only, relative names without `..`, only the names the index lists, the sizes
it gives, none twice) and every manifest (its sha256, and that it names exactly the blobs the index gives
it). Blob contents are hashed while they stream (HashingReader), by whoever reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, ModelRefError
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import MANIFEST_V2, content_digest
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import CHUNK, descriptors

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


def model_names(refs):
    """The models' short names, for messages and progress lines."""
    return ", ".join(ref.short for ref in refs)


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

    def read_index(self):
        """The index as it is in the file (parsed, not re-checked): what an export compares its own with."""
        return json.loads(self._read(self._members[INDEX]))

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
