# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a model is, from its manifest and the GGUF header of its model layer, without the weights.

From a registry, the header comes in HTTP Range requests with an end (`bytes=a-b`), so the registry
or the CDN it redirects to sends only those bytes; from a local Ollama store, from the blob file.
"""

from __future__ import annotations

import os
import re
from urllib.error import HTTPError

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError
from ansible_collections.aiplatform.ollama.plugins.module_utils.gguf_header import GGUFError, model_facts, read_header
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import RegistryClient, RegistryError
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore, StoreError

MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class ModelInfoError(CollectionError):
    """`kind` is one of not_found, unreachable, auth, timeout, not_gguf, protocol, io."""

    default_kind = "protocol"


class RangeRegistryClient(RegistryClient):
    """A RegistryClient that can read a blob's byte range with an end, not only from an offset on."""

    def read_range(self, repository, digest, offset, length):
        """Bytes [offset, offset + length) of a blob; fewer only at its end. The registry's redirect to a
        blob host (a CDN) is followed with the range and without the registry's credentials. A server
        that ignores the range and sends the whole blob is read up to the range's end and then closed."""
        path = f"/v2/{repository}/blobs/{digest}"
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        try:
            resp = self.open(path, scope=f"repository:{repository}:pull", extra_headers=headers)
        except HTTPError as err:
            if err.code == 416:
                return b""  # the range starts at or past the end of the blob
            answered = (getattr(err, "url", None) or self.base_url + path).split("?")[0]
            raise RegistryError(
                f"{answered} answered HTTP {err.code} for bytes {offset}-{offset + length - 1} of blob {digest} "
                f"(registry {self.host}, repository {repository})",
                kind="not_found" if err.code == 404 else "http",
                status=err.code,
            ) from err
        try:
            status = getattr(resp, "status", None) or resp.getcode()
            if status == 206:
                match = _CONTENT_RANGE.match((resp.headers.get("Content-Range") or "").strip())
                if not match or int(match.group(1)) != offset:
                    raise RegistryError(
                        "blob {} of {}: asked for bytes from {}, got Content-Range {!r}".format(
                            digest, repository, offset, resp.headers.get("Content-Range")
                        ),
                        kind="protocol",
                    )
                return _read_exactly(resp, length)
            # 200: the whole blob; skip to the range
            skip = offset
            while skip:
                chunk = resp.read(min(skip, 1 << 20))
                if not chunk:
                    return b""
                skip -= len(chunk)
            return _read_exactly(resp, length)
        finally:
            resp.close()


def _read_exactly(resp, length):
    parts, have = [], 0
    while have < length:
        chunk = resp.read(length - have)
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def layer_list(manifest):
    return [
        {"media_type": item.get("mediaType", ""), "digest": item.get("digest", ""), "size": int(item.get("size") or 0)}
        for item in manifest.get("layers") or []
    ]


def model_layer(manifest, name):
    """The manifest's first model layer (the GGUF weights)."""
    for item in manifest.get("layers") or []:
        if item.get("mediaType") == MODEL_MEDIA_TYPE:
            return {"digest": item.get("digest", ""), "size": int(item.get("size") or 0)}
    types = ", ".join(sorted({item.get("mediaType", "?") for item in manifest.get("layers") or []})) or "none"
    raise ModelInfoError(f"the manifest of {name} has no {MODEL_MEDIA_TYPE} layer (its layers: {types})")


def _config(manifest):
    config = manifest.get("config") or {}
    return {
        "media_type": config.get("mediaType", ""),
        "digest": config.get("digest", ""),
        "size": int(config.get("size") or 0),
    }


def _header_facts(read, layer, where):
    try:
        header = read_header(read, size=layer["size"] or None)
        facts = model_facts(header, file_size=layer["size"] or None)
    except GGUFError as err:
        if err.kind == "not_gguf":
            raise ModelInfoError(f"the model layer {layer['digest']} of {where} is not a GGUF file: {err}",
                                 kind="not_gguf") from err
        raise ModelInfoError(f"the GGUF header of {layer['digest']} ({where}) cannot be read: {err}",
                             kind="not_gguf") from err
    facts["ranges_read"] = header.ranges
    return facts


def from_registry(client, ref):
    """The model's description read from its registry: manifest, then the header by ranges."""
    where = f"{ref.short} in registry {ref.host}"
    try:
        remote = client.resolve(ref.repository, ref.tag)
    except RegistryError as err:
        raise ModelInfoError(f"reading the manifest of {where}: {err}", kind=_kind(err)) from err
    manifest = remote["manifest"]
    layer = model_layer(manifest, where)

    def read(offset, length):
        try:
            return client.read_range(ref.repository, layer["digest"], offset, length)
        except RegistryError as err:
            raise ModelInfoError(
                f"reading bytes {offset}-{offset + length - 1} of blob {layer['digest']} ({where}): {err}",
                kind=_kind(err),
            ) from err

    facts = _header_facts(read, layer, where)
    return _describe(ref, "registry", remote["digest"], manifest, layer, facts)


def from_store(path, ref):
    """The model's description read from an Ollama model store directory (OLLAMA_MODELS)."""
    store = OllamaStore(path)
    where = f"{ref.short} in the store {store.root}"
    if not os.path.isdir(store.root):
        raise ModelInfoError(f"the model store {store.root} does not exist (path names the OLLAMA_MODELS directory)",
                             kind="not_found")
    try:
        local = store.require_manifest(ref)
    except StoreError as err:
        if err.kind == "absent":
            raise ModelInfoError(f"model {err}", kind="not_found") from err
        raise ModelInfoError(str(err), kind="io") from err
    layer = model_layer(local.manifest, where)
    try:
        blob = store.blob_path(layer["digest"])
        handle = open(blob, "rb")  # noqa: SIM115 - closed below, after the header is read
    except StoreError as err:
        raise ModelInfoError(f"the manifest of {where} names {layer['digest']!r}: {err}", kind="protocol") from err
    except OSError as err:
        raise ModelInfoError(
            f"the model layer {layer['digest']} of {where} is missing from {store.blobs_dir}: {err.strerror}",
            kind="not_found",
        ) from err
    try:
        size = os.fstat(handle.fileno()).st_size
        if layer["size"] and size != layer["size"]:
            raise ModelInfoError(
                f"blob {blob} holds {size} bytes, its manifest declares {layer['size']}: the store is incomplete",
                kind="io",
            )

        def read(offset, length):
            handle.seek(offset)
            return handle.read(length)

        facts = _header_facts(read, dict(layer, size=size), where)
    finally:
        handle.close()
    return _describe(ref, "store", local.digest, local.manifest, layer, facts, manifest_path=local.path)


def _describe(ref, source, digest, manifest, layer, facts, manifest_path=None):
    config = _config(manifest)
    layers = layer_list(manifest)
    info = {
        "model": ref.full,
        "name": ref.short,
        "source": source,
        "manifest_digest": digest,
        "size": config["size"] + sum(item["size"] for item in layers),
        "config": config,
        "layers": layers,
        "model_digest": layer["digest"],
        "blob_size": layer["size"],
    }
    if manifest_path:
        info["manifest_path"] = manifest_path
    info.update(facts)
    return info


def _kind(err):
    return {
        "not_found": "not_found",
        "unreachable": "unreachable",
        "timeout": "timeout",
        "auth": "auth",
    }.get(getattr(err, "kind", ""), "protocol")
