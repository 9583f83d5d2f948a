#!/usr/bin/python
# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_model
short_description: Pull or delete a model on an Ollama server, idempotently
version_added: 1.0.0
description:
  - Makes sure a model is present on, up to date on, or absent from an Ollama server, through the
    server's REST API (C(/api/tags), C(/api/pull), C(/api/delete)).
  - V(present) pulls only when the model is missing, so a second run reports no change.
  - V(latest) compares the digest of the local manifest with the one the registry serves for the
    same tag and pulls only when they differ.
  - The pull runs on the server; its progress (percentage, bytes, rate, ETA) is printed by the
    action plugin of this module while the task runs, see O(progress_interval).
author:
  - AI Platform team (@aiplatform)
extends_documentation_fragment:
  - aiplatform.ollama.ollama
  - aiplatform.ollama.ollama_registry
  - aiplatform.ollama.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether a pull or delete would happen, and for V(latest) which digest the registry has.
  diff_mode:
    support: full
    details: Shows the model's digest and size before and after.
  platform:
    support: full
    details: Runs on any host that reaches the Ollama server.
options:
  name:
    description:
      - The model reference, as C(ollama pull) takes it.
      - V(qwen2.5) means V(registry.ollama.ai/library/qwen2.5:latest); a private registry is given as
        V(registry.example.com:5000/library/qwen2.5:72b).
      - Validated before any request is made.
    type: str
    required: true
    aliases: [model]
  state:
    description:
      - V(present) pulls the model when it is not on the server.
      - V(latest) also pulls when the registry has another manifest for the tag than the server.
      - V(absent) deletes the model (blobs other models share stay).
    type: str
    choices: [present, absent, latest]
    default: present
  insecure:
    description:
      - Talk plain HTTP to the model's registry, both in the pull the server does (Ollama's C(--insecure))
        and in the managed host's digest lookup of O(state=latest).
      - It does not disable TLS verification. Unlike in the modules where the managed host downloads,
        O(validate_certs) and O(ca_path) apply here to the managed host's connections (to the server and
        for the lookup), not to the server's pull; a registry with a private CA needs that CA trusted by
        the server (the system CA store of its host or image).
      - Also lets O(registry_password) go to a plain-HTTP token service in the digest lookup. Without it,
        a registry whose challenge names an C(http://) token service makes that lookup fail, naming that
        URL, and the password is not sent.
    type: bool
    default: false
  registry_username:
    description:
      - User (basic auth, or to obtain a bearer token) for the registry lookups the managed host makes
        itself, and only those; the digest O(state=latest) compares, what check mode reports would be
        pulled, and the layer sizes the pull's progress is counted against.
      - The pull itself is done by the server, which never gets O(registry_username) or
        O(registry_password) and speaks only Ollama's own key-pair authentication. For a registry that
        needs a login, seed the server's model store with M(aiplatform.ollama.ollama_store_model) instead.
    type: str
  pull_timeout:
    description:
      - Seconds a pull may go without a progress line before the module gives up.
      - The server is silent while it checks the sha256 of each downloaded layer, which takes minutes
        for tens of gigabytes on slow disks.
    type: float
    default: 900
  progress_interval:
    description:
      - Seconds between two progress lines the action plugin prints during a pull. V(0) runs the
        module without progress output (and without the asynchronous job that carries it).
      - Ignored when the task itself sets C(async).
    type: float
    default: 10
seealso:
  - module: aiplatform.ollama.ollama_info
  - module: aiplatform.ollama.ollama_health
notes:
  - The server, not the managed host, downloads the model, so proxies for the registry must be set in
    the server's environment (C(HTTPS_PROXY)). Only the digest lookup of O(state=latest) goes from the
    managed host to the registry; when the registry cannot be reached from there, the module pulls
    and compares the digests before and after instead (not in check mode).
  - The managed host's registry lookups use O(timeout), O(validate_certs) and O(ca_path), the options
    for the Ollama server; the server's pull uses none of them.
"""

EXAMPLES = r"""
- name: Make sure qwen2.5:72b is on the server (pulled once, then unchanged)
  aiplatform.ollama.ollama_model:
    name: qwen2.5:72b

- name: Keep a model at the registry's current manifest, through a gateway that needs a token
  aiplatform.ollama.ollama_model:
    name: llama3.2
    state: latest
    host: https://ollama.example.com
    api_key: "{{ gateway_token }}"

- name: Pull from a private plain-HTTP registry, progress every 30 seconds
  aiplatform.ollama.ollama_model:
    name: registry.internal:5000/library/qwen2.5:7b
    insecure: true
    progress_interval: 30

- name: Remove a model
  aiplatform.ollama.ollama_model:
    name: qwen2.5:0.5b
    state: absent
"""

RETURN = r"""
model:
  description: The normalised model reference.
  returned: always
  type: str
  sample: registry.ollama.ai/library/qwen2.5:72b
name:
  description: The model as the server lists it.
  returned: always
  type: str
  sample: qwen2.5:72b
action:
  description: What was done (or would be done in check mode).
  returned: always
  type: str
  sample: pulled
  choices: [none, pulled, deleted]
digest:
  description: Digest of the model's manifest on the server after the task (empty when absent).
  returned: always
  type: str
  sample: sha256:a3b1c9d0...
size:
  description: Bytes of all the model's layers on the server after the task (0 when absent).
  returned: always
  type: int
  sample: 47415724544
registry_digest:
  description: Manifest digest the registry serves for the tag, as Ollama stores it.
  returned: when O(state=latest) and the registry answered
  type: str
bytes_transferred:
  description: Bytes the server downloaded for this pull; layers it already had do not count.
  returned: always
  type: int
seconds:
  description: Duration of the pull in seconds (0 without a pull).
  returned: always
  type: float
bytes_per_second:
  description: Average download rate of the pull.
  returned: always
  type: float
error:
  description: Why it failed - C(kind); where known C(url) (no query), C(status), a C(body) excerpt, the subject.
  returned: failure
  type: dict
  sample: {kind: unreachable, url: "http://ollama.ollama.svc.cluster.local:11434/api/version"}
"""

import time  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError, InputError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.header_secrets import HeaderRedactingModule  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import (  # noqa: E402
    OLLAMA_COMMON_ARGS,
    OllamaClient,
    OllamaError,
    PullProgress,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (  # noqa: E402
    REGISTRY_ARGS,
    REGISTRY_REQUIRED_TOGETHER,
    RegistryClient,
    RegistryError,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import ProgressFile, human_bytes  # noqa: E402

_NOT_IN_REGISTRY = ("file does not exist", "not found", "manifest unknown", "name unknown")
_REGISTRY_UNREACHABLE = (
    "dial tcp",
    "no such host",
    "connection refused",
    "i/o timeout",
    "tls:",
    "x509",
    "certificate",
    "server gave http response",
    "eof",
    "connection reset",
    "no location header",
    "context deadline exceeded",
)
_DISK_FULL = ("no space left on device", "disk quota exceeded", "not enough space")


def explain_pull_error(err, ref, host, insecure):
    """Turn what the server said about a failed pull into an error naming the cause and the fix."""
    text = err.msg
    low = text.lower()
    if err.kind in ("unreachable", "timeout"):
        return f"pulling {ref.short}: {text}"
    if err.status == 400:
        return f"the Ollama server at {host} rejected {ref.short!r}: {text}"
    if any(s in low for s in _DISK_FULL):
        return (
            f"the Ollama server at {host} ran out of disk space pulling {ref.short} ({text}): free space in its "
            "model store (OLLAMA_MODELS) or grow the volume, then run again; the pull resumes"
        )
    if any(s in low for s in _NOT_IN_REGISTRY):
        return (
            f"model {ref.short} was not found in registry {ref.host}: the Ollama server at {host} answered {text!r}. "
            "Check the model name and tag"
        )
    if any(s in low for s in _REGISTRY_UNREACHABLE):
        hint = "" if insecure else "; a plain-HTTP registry needs insecure=true"
        return (
            f"the Ollama server at {host} could not reach registry {ref.host} to pull {ref.short}: {text}. The "
            "server downloads the model itself: check its network, DNS and proxy settings (HTTPS_PROXY in the server's "
            f"environment){hint}"
        )
    return f"pulling {ref.short} on the Ollama server at {host} failed: {text}"


def _state(entry):
    if not entry:
        return {}
    return {
        "digest": "sha256:" + entry.get("digest", "") if entry.get("digest") else "",
        "size": int(entry.get("size") or 0),
    }


def _hex(digest):
    return (digest or "").split(":")[-1].lower()


class ModelTask:
    def __init__(self, module, ref, client):
        self.module = module
        self.ref = ref
        self.client = client
        self.params = module.params
        self.result = dict(
            changed=False,
            model=ref.full,
            name=ref.short,
            action="none",
            digest="",
            size=0,
            bytes_transferred=0,
            seconds=0.0,
            bytes_per_second=0.0,
        )

    def fail(self, msg, cause=None):
        """Stop with `msg`; the structured context is the cause's (an OllamaError or RegistryError)."""
        if cause is None:
            raise CollectionError(msg, kind="protocol", url=self.client.base_url)
        raise CollectionError(msg, kind=cause.kind, url=cause.url, status=cause.status,
                              body=getattr(cause, "body", None)) from cause

    def local(self):
        try:
            return self.client.find_model(self.ref)
        except OllamaError as err:
            self.fail(f"listing the models on {self.client.base_url} to check {self.ref.short}: {err}", err)

    def registry_view(self):
        registry = RegistryClient.from_params(self.ref.host, self.params)
        return registry.resolve(self.ref.repository, self.ref.tag)

    def pull_plan(self, remote):
        """Layers of the manifest and which of them the server holds, for exact progress and byte counts."""
        if remote is None:
            try:
                remote = self.registry_view()
            except RegistryError:
                return {}, set()  # the stream alone still gives progress
        manifest = remote["manifest"]
        layers = dict(
            (item["digest"], int(item.get("size") or 0))
            for item in list(manifest.get("layers") or []) + [manifest.get("config") or {}]
            if item.get("digest")
        )
        try:
            present = set(digest for digest in layers if self.client.blob_exists(digest))
        except OllamaError:
            return {}, set()
        return layers, present

    def pull(self, remote=None):
        layers, present = self.pull_plan(remote)
        progress = PullProgress(layers, present)
        report = ProgressFile.from_environment()
        report.write(progress.snapshot(self.ref.short), force=True)
        started = time.monotonic()
        try:
            for event in self.client.pull(
                self.ref.short, insecure=self.params["insecure"], timeout=self.params["pull_timeout"]
            ):
                progress.feed(event)
                report.write(progress.snapshot(self.ref.short))
        except OllamaError as err:
            self.result["bytes_transferred"] = progress.transferred
            self.fail(explain_pull_error(err, self.ref, self.client.base_url, self.params["insecure"]), err)
        finally:
            report.remove()
        if progress.status != "success":
            self.fail(
                f"the pull of {self.ref.short} on {self.client.base_url} ended without success (last status "
                f"{progress.status!r})"
            )
        progress.finish()
        seconds = time.monotonic() - started
        self.result.update(
            bytes_transferred=progress.transferred,
            seconds=round(seconds, 3),
            bytes_per_second=round(progress.transferred / seconds, 1) if seconds > 0 else 0.0,
        )

    def run(self):
        state = self.params["state"]
        check = self.module.check_mode
        before = self.local()
        after = before
        if state == "absent":
            if before:
                self.result.update(changed=True, action="deleted")
                if not check:
                    try:
                        self.client.delete(before.get("model") or before.get("name"))
                    except OllamaError as err:
                        if err.status != 404:
                            self.fail(f"deleting {self.ref.short} on {self.client.base_url}: {err}", err)
                after = None
            return self.finish(before, after)

        remote = None
        if state == "present" and check and not before:
            try:
                remote = self.registry_view()
            except RegistryError:
                remote = None  # only to show what would come; the server decides
        if state == "latest":
            try:
                remote = self.registry_view()
                self.result["registry_digest"] = remote["ollama_digest"]
            except RegistryError as err:
                if err.kind != "unreachable" or check:
                    self.fail(f"looking up the current manifest of {self.ref.short} in registry {self.ref.host}: {err}",
                              err)
                self.module.warn(
                    f"registry {self.ref.host} is not reachable from this host ({err}); pulling through the server "
                    "and comparing digests instead"
                )

        if before and state == "present":
            return self.finish(before, before)
        if before and remote and _hex(before.get("digest")) in (_hex(remote["digest"]), _hex(remote["ollama_digest"])):
            return self.finish(before, before)

        if check:
            self.result.update(changed=True, action="pulled")
            planned = (
                {"digest": remote["ollama_digest"], "size": remote["size"]} if remote else {"digest": "", "size": 0}
            )
            return self.finish(before, planned, planned=True)
        self.pull(remote)
        after = self.local()
        if not after:
            self.fail(f"the server reported success pulling {self.ref.short} but does not list it afterwards")
        self.result["changed"] = not before or _hex(before.get("digest")) != _hex(after.get("digest"))
        self.result["action"] = "pulled" if self.result["changed"] else "none"
        return self.finish(before, after)

    def finish(self, before, after, planned=False):
        after_state = after if planned else _state(after)
        self.result.update(after_state or {"digest": "", "size": 0})
        if planned:
            size = after_state["size"]
            self.result["msg"] = f"would pull {self.ref.short}" + (f" ({human_bytes(size)})" if size else "")
        if self.module._diff:
            self.result["diff"] = {
                "before": dict(_state(before), model=self.ref.full) if before else {},
                "after": dict(after_state, model=self.ref.full) if after_state else {},
                "before_header": f"{self.ref.short} on {self.client.base_url}",
                "after_header": f"{self.ref.short} on {self.client.base_url}",
            }
        return self.result


def main():
    argument_spec = dict(OLLAMA_COMMON_ARGS, **REGISTRY_ARGS)
    argument_spec.update(
        name=dict(type="str", required=True, aliases=["model"]),
        state=dict(type="str", choices=["present", "absent", "latest"], default="present"),
        pull_timeout=dict(type="float", default=900),
        progress_interval=dict(type="float", default=10),
    )
    module = HeaderRedactingModule(argument_spec=argument_spec, required_together=REGISTRY_REQUIRED_TOGETHER,
                                   supports_check_mode=True)
    task = None
    try:
        ref = ModelRef.parse(module.params["name"])
        try:
            client = OllamaClient.from_params(module.params)
        except ValueError as err:
            raise InputError(str(err)) from err
        task = ModelTask(module, ref, client)
        result = task.run()
    except CollectionError as err:
        # a failed task did nothing it can vouch for: changed false, action none
        done = task.result if task else {}
        module.fail_json(msg=str(err), **dict(done, changed=False, action="none", error=err.details()))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
