# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pushing a bundle into a registry (OCI distribution: monolithic blob uploads, the manifest last)."""

from __future__ import annotations

import contextlib
from urllib.error import HTTPError
from urllib.parse import urljoin, urlsplit

from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.format import Bundle, model_names
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.progress import BundleProgress
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_http import origin
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import RegistryClient, RegistryError


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
        progress.what = model_names(m.ref for m in bundle.models)
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
