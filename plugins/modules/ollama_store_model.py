#!/usr/bin/python
# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_store_model
short_description: Seed, verify or remove models in an Ollama model store directory, straight from their registry
version_added: 1.0.0
description:
  - Makes sure models are present in, up to date in, verified in, or absent from an Ollama model store
    directory (what C(OLLAMA_MODELS) points at) without any Ollama server. The managed host downloads the
    manifest and blobs from the registry (the registry v2 API, as C(ollama pull) speaks it) and writes the
    store layout Ollama reads, C(manifests/<registry>/<namespace>/<model>/<tag>) and C(blobs/sha256-<hex>).
  - Pre-seeding the store a server will use keeps the download out of the server's start-up (no
    C(postStart) pull that blocks readiness, no page cache charged to the server's memory limit).
  - Each blob is downloaded in parallel ranged parts (see O(parts), O(part_size)), the blobs of a model and
    the models of the task at the same time, within O(max_connections) connections in all, which is what a CDN
    that caps each connection's rate, or a long-haul link, needs. A server that does not honour Range requests
    gets one plain stream per blob.
  - Every blob is verified by sha256 over its whole content before it is renamed into place atomically; the
    manifest is written last, so a failure never leaves a manifest that names a missing blob. An interrupted
    download, a killed one included, resumes each part where it stopped (the progress is kept next to the
    C(-partial) file); Ollama removes such files when it starts.
  - Writers take a lock on the store (C(flock) on C(.ollama_store.lock) in O(path), removed when done), so two
    seeders of one store never write the same files at once; the second waits (see O(lock_timeout)), then
    finds the model in place.
  - V(present) downloads only the blobs that are missing or incomplete; a store that already holds the
    complete model is left alone without contacting the registry.
  - The download's progress (percentage, bytes, rate, ETA, blobs and connections) is printed by the action
    plugin of this module while the task runs, see O(progress_interval).
  - With O(num_thread), each model also gets its thread-aligned served model, written into the store as
    C(ollama create) writes it, so that the servers can mount the store read-only with nothing left to create.
author:
  - AI Platform team (@aiplatform)
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the models would be seeded, repaired or removed, with the registry's digest and the
        bytes to download. O(state=verified) re-hashes the blobs in check mode too (it only reads).
      - Reports whether each served model (O(num_thread)) would be written; its digest is known only for a
        model the store already holds.
  diff_mode:
    support: full
    details:
      - Shows each model's manifest digest and size in the store before and after; for O(state=verified), the
        missing and corrupt blobs before; with O(num_thread), the served model's name and digest.
  platform:
    support: full
    details: Runs on the host whose filesystem holds the store; that host downloads the models.
extends_documentation_fragment:
  - aiplatform.ollama.ollama_registry
  - aiplatform.ollama.ollama_registry.tls
  - aiplatform.ollama.attributes
options:
  name:
    description:
      - The model reference, as C(ollama pull) takes it, or a list of them.
      - V(qwen2.5:72b) means V(registry.ollama.ai/library/qwen2.5:72b); a private registry is given as
        V(registry.example.com:5000/library/qwen2.5:72b).
      - The models of a list download at the same time, sharing O(max_connections). With
        O(registry_username) they must all come from one registry.
      - Validated before anything is read or written.
    type: list
    elements: str
    required: true
    aliases: [model]
  path:
    description:
      - The model store directory, the value C(OLLAMA_MODELS) has for the server that will use it
        (for the chart's default mount, the volume's C(models) directory).
      - Created when missing.
      - Never seed a store that a running Ollama server owns unless it runs with C(OLLAMA_NOPRUNE=1),
        since its start-up prune and this module would work on the same files.
    type: path
    required: true
  state:
    description:
      - V(present) downloads a model when the store does not hold it completely.
      - V(latest) also downloads it when the registry serves another manifest for the tag than the store
        holds (the tag moved), as M(aiplatform.ollama.ollama_model) does; the blobs of the former manifest
        that no other manifest uses are removed, as C(ollama pull) removes them.
      - V(verified) re-hashes every blob the model's manifest names and fails, naming them, when some are
        missing or corrupt; with O(repair=true) it downloads them again instead (a model not in the store at
        all is seeded).
      - V(absent) removes the model's manifest, then the blobs no other manifest in the store uses.
    type: str
    choices: [present, absent, latest, verified]
    default: present
  repair:
    description:
      - With O(state=verified), remove the corrupt blobs and download them, and the missing ones, again.
    type: bool
    default: false
  max_connections:
    description:
      - Connections at once over all the blobs and models of the task.
    type: int
    default: 16
  parts:
    description:
      - Connections at once for one blob, and how many parts a blob is split into unless that makes the parts
        smaller than 16 MiB or larger than 1 GB (then as many parts as those sizes give, still this many at a
        time). O(part_size) sets the size instead.
      - The default, 16 parts of at most 1 GB, is how C(ollama pull) splits a blob (Ollama 0.18.3). Its parts
        are at least 100 MB, these at least 16 MiB, so that a blob of a few hundred MB too is spread over 16
        connections, which a CDN that caps each connection's rate needs.
      - V(1) downloads each blob as one stream.
      - A part whose connection breaks or stalls for O(timeout) seconds is tried again from where it stopped.
    type: int
    default: 16
  part_size:
    description:
      - Size of the parts a blob is split into, e.g. V(64MiB), V(1G) or a number of bytes (K, M, G are powers
        of 1024); at least V(1MiB). A blob is never split into more than 4096 parts.
      - Unset, the blob's size divided by O(parts), within 16 MiB (C(ollama pull) uses 100 MB, too large to
        spread a blob of a few hundred MB over all connections) and 1 GB.
    type: str
  lock_timeout:
    description:
      - Seconds to wait for another seeder of the same store to finish before failing, naming it.
      - Unset, wait as long as it runs. Its lock goes with its process, so a killed seeder never blocks one.
    type: float
  progress_interval:
    description:
      - Seconds between two progress lines the action plugin prints during a download or verification.
        V(0) runs the module without progress output (and without the asynchronous job that carries it).
      - Ignored when the task itself sets C(async).
    type: float
    default: 10
  num_thread:
    description:
      - The threads the served models are aligned to; V(0) writes no served model.
      - Above 0, once a model is complete in the store, its served model is written into the same store under
        the same lock, named after it with C(-t<num_thread>) appended to its tag (V(qwen2.5:72b) gives
        V(qwen2.5:72b-t4)), as C(ollama create) (Ollama 0.18.3) writes it for the Modelfile
        C(FROM <name>) C(PARAMETER num_thread <num_thread>), byte for byte; the base's own parameters (stop
        tokens, temperature) are kept. Only the GGUF headers of the model's layers are read, never the weights.
      - A served model the store already holds as it would be written is left alone; one derived from a former
        manifest of the model is replaced, and its blobs no other manifest uses are removed.
      - Only with O(state=present) or O(state=latest).
    type: int
    default: 0
seealso:
  - module: aiplatform.ollama.ollama_model
  - module: aiplatform.ollama.ollama_bundle
  - name: Ollama model store layout
    description: Where Ollama keeps manifests and blobs (OLLAMA_MODELS).
    link: https://github.com/ollama/ollama/blob/main/docs/faq.md#where-are-models-stored
notes:
  - The managed host downloads the model, so proxies for the registry come from its environment
    (C(https_proxy), C(no_proxy)).
  - Only registries that speak the registry v2 API with anonymous, basic or bearer-token access are
    supported; Ollama's own key-pair authentication (private models on ollama.com) is not.
  - The store is writable only by the user the module runs as; run it with the owner of the volume
    (become) so that the server can read what it writes.
  - Memory stays flat whatever the model's size (one 256 KiB buffer per connection); the page cache of the
    written blobs is the kernel's, which a memory-limited pod is charged for.
"""

EXAMPLES = r"""
- name: Seed qwen2.5:72b into the volume the Ollama pod will mount at /root/.ollama
  aiplatform.ollama.ollama_store_model:
    name: qwen2.5:72b
    path: /mnt/ollama-models/models

- name: Seed two models at once from a private plain-HTTP mirror, 32 connections in all
  aiplatform.ollama.ollama_store_model:
    name:
      - registry.internal:5000/library/qwen2.5:7b
      - registry.internal:5000/library/nomic-embed-text:latest
    path: /var/lib/ollama/models
    insecure: true
    max_connections: 32
    progress_interval: 30
    registry_username: puller
    registry_password: "{{ vault_registry_token }}"

- name: Keep the store on the registry's current qwen2.5:7b, waiting at most 10 minutes for another seeder
  aiplatform.ollama.ollama_store_model:
    name: qwen2.5:7b
    path: /var/lib/ollama/models
    state: latest
    lock_timeout: 600

- name: Re-hash every blob of the model and download the corrupt or missing ones again
  aiplatform.ollama.ollama_store_model:
    name: qwen2.5:72b
    path: /mnt/ollama-models/models
    state: verified
    repair: true

- name: One stream per blob, for a server that limits connections
  aiplatform.ollama.ollama_store_model:
    name: qwen2.5:0.5b
    path: /var/lib/ollama/models
    parts: 1
    max_connections: 2

- name: Seed qwen2.5:72b and its served model qwen2.5:72b-t4, for servers that mount the store read-only
  aiplatform.ollama.ollama_store_model:
    name: qwen2.5:72b
    path: /mnt/ollama-models/models
    num_thread: 4

- name: Remove a model (blobs that other models share stay)
  aiplatform.ollama.ollama_store_model:
    name: qwen2.5:0.5b
    path: /var/lib/ollama/models
    state: absent
"""

RETURN = r"""
model:
  description: The normalised model reference (of the first model when O(name) lists several; see RV(models)).
  returned: always
  type: str
  sample: registry.ollama.ai/library/qwen2.5:72b
name:
  description: The model as Ollama lists it (the first one when O(name) lists several).
  returned: always
  type: str
  sample: qwen2.5:72b
action:
  description:
    - What was done (or would be done in check mode); with several models, the most significant of theirs.
  returned: always
  type: str
  sample: seeded
  choices: [none, seeded, repaired, removed]
digest:
  description:
    - Digest of the model's manifest in the store after the task, as Ollama lists it (empty when absent).
    - In check mode, the digest the seeded manifest would have.
  returned: always
  type: str
  sample: sha256:a3b1c9d0...
size:
  description: Bytes of all the model's blobs (empty when absent).
  returned: always
  type: int
  sample: 47415724544
registry_digest:
  description: Digest of the manifest as the registry serves it (C(Docker-Content-Digest)).
  returned: when the registry was asked
  type: str
manifest_path:
  description: The manifest file of the model in the store.
  returned: always
  type: str
  sample: /var/lib/ollama/models/manifests/registry.ollama.ai/library/qwen2.5/72b
blobs_downloaded:
  description: Digests of the blobs downloaded (or, in check mode, that would be), of all the models.
  returned: always
  type: list
  elements: str
blobs_removed:
  description: Digests of the blobs removed, by O(state=absent) or as those of a replaced manifest by O(state=latest).
  returned: always
  type: list
  elements: str
blobs_missing:
  description: Digests of the blobs O(state=verified) found missing (before a repair).
  returned: always
  type: list
  elements: str
blobs_corrupt:
  description: Digests of the blobs O(state=verified) found of the wrong size or content (before a repair).
  returned: always
  type: list
  elements: str
bytes_freed:
  description: Bytes of blob files removed with O(state=absent).
  returned: when O(state=absent) removed a model
  type: int
bytes_transferred:
  description:
    - Bytes downloaded by this run (in check mode, that would be); blobs already in the store, and what an
      interrupted run already downloaded, do not count.
  returned: always
  type: int
seconds:
  description: Duration of the download in seconds (0 without one).
  returned: always
  type: float
bytes_per_second:
  description: Average download rate.
  returned: always
  type: float
error:
  description:
    - Why it failed - C(kind) (V(invalid_input) for an option, V(unwritable), V(disk_full), V(damaged), the
      registry's kind such as V(not_found) or V(unreachable), or the store's such as V(digest), V(locked), V(io));
      where known C(url) (no query), C(status), a C(body) excerpt and the subject (C(path), C(digest)).
  returned: failure
  type: dict
  sample: {kind: unwritable, path: /mnt/ollama-models/models}
served:
  description: The served model of the first model of O(name) (see RV(models)).
  returned: when O(num_thread) is above 0
  type: str
  sample: qwen2.5:72b-t4
served_changed:
  description: Whether the served model of the first model was (in check mode, would be) written.
  returned: when O(num_thread) is above 0
  type: bool
served_digest:
  description: Digest of the manifest of the first model's served model in the store after the task.
  returned: when O(num_thread) is above 0
  type: str
store_error:
  description: The kind of store failure that stopped a download (V(digest), V(disk_full), V(short), ...).
  returned: when writing a downloaded blob into the store failed
  type: str
  sample: disk_full
models:
  description: One entry per model of O(name), with the fields above that describe one model.
  returned: always
  type: list
  elements: dict
  contains:
    model:
      description: The normalised model reference.
      type: str
    name:
      description: The model as Ollama lists it.
      type: str
    action:
      description: What was done to this model.
      type: str
    changed:
      description: Whether this model or its served model changed.
      type: bool
    digest:
      description: Its manifest's digest in the store after the task.
      type: str
    size:
      description: Bytes of its blobs.
      type: int
    manifest_path:
      description: Its manifest file.
      type: str
    registry_digest:
      description: Its manifest's digest in the registry, when the registry was asked.
      type: str
    blobs_downloaded:
      description: Its blobs downloaded.
      type: list
      elements: str
    blobs_removed:
      description: Its blobs removed.
      type: list
      elements: str
    blobs_missing:
      description: Its blobs found missing by O(state=verified).
      type: list
      elements: str
    blobs_corrupt:
      description: Its blobs found corrupt by O(state=verified).
      type: list
      elements: str
    served:
      description: Its served model (O(num_thread)), as Ollama lists it.
      returned: when O(num_thread) is above 0
      type: str
      sample: qwen2.5:72b-t4
    served_changed:
      description: Whether its served model was (in check mode, would be) written.
      returned: when O(num_thread) is above 0
      type: bool
    served_digest:
      description:
        - Digest of its served model's manifest in the store after the task, as Ollama lists it.
        - Empty in check mode while the model itself is still to be seeded.
      returned: when O(num_thread) is above 0
      type: str
"""

import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_download import (  # noqa: E402
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PARTS,
    MIN_PART_SIZE,
    DownloadFailed,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.derived_model import (  # noqa: E402
    DerivedModelError,
    check_local_source,
    derive,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError, InputError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import (  # noqa: E402
    ModelRef,
    parse_models,
    served_name,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (  # noqa: E402
    REGISTRY_ARGS,
    REGISTRY_REQUIRED_TOGETHER,
    RegistryBlobSource,
    RegistryClient,
    RegistryError,
    download_fix,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import (  # noqa: E402
    OllamaStore,
    StoreError,
    check_lock_timeout,
    descriptors,
    digest_hex,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import (  # noqa: E402
    DownloadProgress,
    ProgressFile,
    human_bytes,
)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_ACTIONS = ("removed", "repaired", "seeded")


def parse_size(value):
    """`64MiB`, `64M`, `1G`, `104857600` -> bytes (K, M, G, T are powers of 1024); None when unset."""
    if value is None or value == "":
        return None
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(value)
    number, unit = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


class SeedError(CollectionError):
    """A run that failed: the message says which model, which store and what was written.

    The `error` context is the cause's (a StoreError, RegistryError, ...) when there is one; `extra`
    holds further keys of the failed task's result.
    """

    def __init__(self, msg, cause=None, extra=None, **context):
        if isinstance(cause, CollectionError):
            context = dict(cause.details(), **context)
        super().__init__(msg, **context)
        self.extra = extra or {}


class ModelSeed:
    """One model of the task: what the store has, what the registry has, what is done about it."""

    def __init__(self, ref, manifest_path, served_ref=None):
        self.ref = ref
        self.manifest_path = manifest_path
        self.served = ServedModel(served_ref) if served_ref else None
        self.before = None  # LocalManifest
        self.after = None  # LocalManifest, or the planned {"digest", "size"} in check mode
        self.remote = None  # RegistryClient.resolve()
        self.manifest = None  # the manifest the store must end up with
        self.todo = []  # [(digest, size)] to download
        self.action = "none"
        self.downloaded = []
        self.removed = []
        self.missing = []
        self.corrupt = {}  # digest -> what was found
        self.written = False  # its manifest was written although the task failed

    @property
    def changed(self):
        """Whether the model itself changes (its served model aside)."""
        return self.action != "none"

    def state(self, entry):
        if entry is None:
            return {}
        if isinstance(entry, dict):
            return dict(entry)
        return {"digest": entry.digest, "size": entry.size}

    def result(self):
        after = self.state(self.after)
        out = dict(
            model=self.ref.full,
            name=self.ref.short,
            action=self.action,
            changed=self.changed or bool(self.served and self.served.changed),
            digest=after.get("digest", ""),
            size=after.get("size", 0),
            manifest_path=self.manifest_path,
            blobs_downloaded=list(self.downloaded),
            blobs_removed=list(self.removed),
            blobs_missing=list(self.missing),
            blobs_corrupt=sorted(self.corrupt),
        )
        if self.remote:
            out["registry_digest"] = self.remote["digest"]
        if self.served:
            out.update(self.served.result())
        return out

    def diff(self, where):
        header = f"{self.ref.short} in {where}"
        before = self.state(self.before)
        if before and (self.missing or self.corrupt):
            before.update(blobs_missing=list(self.missing), blobs_corrupt=sorted(self.corrupt))
        after = self.state(self.after)
        diff = {
            "before": dict(before, model=self.ref.full) if before else {},
            "after": dict(after, model=self.ref.full) if after else {},
            "before_header": header,
            "after_header": header,
        }
        if self.served:
            for side, digest in (("before", self.served.before), ("after", self.served.after)):
                if digest is not None:
                    diff[side]["served"] = {"name": self.served.ref.short, "digest": digest}
        return diff


class ServedModel:
    """The thread-aligned model derived from a model of the task, as `ollama create` writes it."""

    def __init__(self, ref):
        self.ref = ref
        self.before = None  # digest of its manifest in the store before the task
        self.after = None  # after the task (planned in check mode; None while unknown)
        self.changed = False
        self.written = False  # some of it was written, also when the task failed

    def result(self):
        return dict(served=self.ref.short, served_changed=self.changed, served_digest=self.after or "")


class StoreSeeder:
    """One run of the module over the models it names, sharing one store lock and one download."""

    def __init__(self, module, refs, served_refs):
        self.module = module
        self.params = module.params
        self.store = OllamaStore(self.params["path"])
        self.models = [ModelSeed(ref, self.store.manifest_path(ref), served) for ref, served in zip(refs, served_refs)]
        self.clients = {}
        self.report = ProgressFile.from_environment()
        self.stats = dict(bytes_transferred=0, seconds=0.0, bytes_per_second=0.0)
        self.freed = None

    @property
    def names(self):
        return ", ".join(m.ref.short for m in self.models)

    # -- results ------------------------------------------------------------------------------

    def results(self):
        results = [m.result() for m in self.models]
        first = dict(results[0])
        first.pop("changed")
        actions = [m.action for m in self.models if m.changed]
        out = dict(
            first,
            changed=bool(actions) or any(m.served.changed for m in self.models if m.served),
            action=next((a for a in _ACTIONS if a in actions), "none"),
            blobs_downloaded=list(dict.fromkeys(d for r in results for d in r["blobs_downloaded"])),
            blobs_removed=list(dict.fromkeys(d for r in results for d in r["blobs_removed"])),
            blobs_missing=list(dict.fromkeys(d for r in results for d in r["blobs_missing"])),
            blobs_corrupt=list(dict.fromkeys(d for r in results for d in r["blobs_corrupt"])),
            models=results,
            **self.stats,
        )
        if self.freed is not None:
            out["bytes_freed"] = self.freed
        return out

    def failed(self, err):
        """The result of a run that stopped on `err`, without its message."""
        self.report.remove()
        extra = err.extra if isinstance(err, SeedError) else {}
        # a failed run vouches only for the manifests it wrote (the models complete before it stopped);
        # every other model reads as it was before, with nothing done
        for model in self.models:
            if not model.written:
                model.action, model.after = "none", model.before
            if model.served and not model.served.written:
                model.served.changed, model.served.after = False, model.served.before
        return dict(self.results(), error=err.details(), **extra)

    def finish(self, msg=None):
        """The result of a run that succeeded."""
        out = self.results()
        if msg:
            out["msg"] = msg
        if self.module._diff:
            diffs = [m.diff(self.store.root) for m in self.models]
            out["diff"] = diffs[0] if len(diffs) == 1 else diffs
        return out

    def run(self):
        state = self.params["state"]
        if state == "absent":
            return self.absent()
        if state == "verified":
            return self.verified()
        return self.present(latest=state == "latest")

    # -- reading ------------------------------------------------------------------------------

    def local(self, model):
        try:
            return self.store.read_manifest(model.ref)
        except StoreError as err:
            if err.kind == "corrupt":
                self.module.warn(f"{err}; seeding {model.ref.short} replaces it")
                return None
            raise SeedError(f"reading the store {self.store.root} for {model.ref.short}: {err}", err) from err

    def client(self, host):
        if host not in self.clients:
            self.clients[host] = RegistryClient.from_params(host, self.params)
        return self.clients[host]

    def resolve(self, model):
        try:
            model.remote = self.client(model.ref.host).resolve(model.ref.repository, model.ref.tag)
        except RegistryError as err:
            raise SeedError(f"seeding {model.ref.short} into {self.store.root}: {err}{download_fix(err)}; nothing "
                            "was written", err) from err
        return model.remote

    def complete(self, entry):
        return entry is not None and not self.store.missing(entry.manifest)

    def current(self, model, entry):
        """Whether the store's manifest is the one the registry serves (either digest Ollama may list)."""
        remote = model.remote
        return entry is not None and digest_hex(entry.digest) in (
            digest_hex(remote["digest"]),
            digest_hex(remote["ollama_digest"]),
        )

    def plan(self, model, latest):
        """What seeding `model` takes; model.todo empty when the store holds what is asked."""
        entry = model.before = self.local(model)
        if not latest and self.complete(entry):
            model.after, model.todo, model.action = entry, [], "none"
            return
        remote = model.remote or self.resolve(model)
        if latest and self.complete(entry) and self.current(model, entry):
            model.after, model.todo, model.action = entry, [], "none"
            return
        model.manifest = remote["manifest"]
        model.todo = self.store.missing(model.manifest)
        model.action = "seeded"
        model.after = {"digest": remote["ollama_digest"], "size": remote["size"]}

    # -- writing ------------------------------------------------------------------------------

    def locked(self, what):
        def waiting(holder, waited):
            self.report.waiting_for_lock(self.names, holder, waited)

        return self.store.lock(
            timeout=self.params["lock_timeout"], holder=f"ollama_store_model {what} {self.names}", waiting=waiting
        )

    def lock_failed(self, err):
        """The error to raise for a StoreError met while taking or holding the store lock."""
        if err.kind == "locked":
            return SeedError(f"{err}; nothing was written", err)
        return SeedError(f"{self.params['state']} {self.names} in {self.store.root}: {err}", err)

    def writable(self):
        """Fail before anything is written (check mode too: the run would fail) when the store cannot be."""
        reason = self.store.unwritable_reason()
        if reason:
            raise SeedError(f"cannot seed {self.names} into {self.store.root}: {reason}; nothing was written",
                            kind="unwritable", path=self.store.root)

    def free_space(self, needed):
        try:
            free = self.store.free_bytes()
        except OSError:
            return
        if needed > free:
            raise SeedError(
                f"seeding {self.names} into {self.store.root} needs {human_bytes(needed)} more, but its "
                f"filesystem has {human_bytes(free)} free: grow the volume or free space; nothing was written",
                kind="disk_full", path=self.store.root,
            )

    def download(self, wanted):
        """Download [(model, digest, size)] in parallel parts, each blob once; fails naming the blob and model."""
        blobs, owner = [], {}
        for model, digest, size in wanted:
            key = digest_hex(digest)
            if key in owner:
                continue
            owner[key] = model
            client = self.client(model.ref.host)
            blobs.append((digest, size, RegistryBlobSource(client, model.ref.repository, digest, size)))
        if not blobs:
            return
        needed = sum(size - self.store.partial_bytes(digest, size) for digest, size, _src in blobs)
        progress = DownloadProgress(needed)

        def status(number, digest, size, connections):
            return f"blob {number}/{len(blobs)} {digest[:19]} ({human_bytes(size)}), {connections} connections"

        def advance(count, downloader):
            progress.add(count)
            current = downloader.current()
            if current and self.report.due():
                number, job = current
                progress.status = status(number, job.digest, job.size, downloader.active_connections)
                self.report.write(progress.snapshot(self.names))

        first = min(blobs, key=lambda blob: blob[1])  # the downloader starts with the smallest
        progress.status = status(1, first[0], first[1], 0)
        self.report.write(progress.snapshot(self.names), force=True)
        started = time.monotonic()
        try:
            received = self.store.download_blobs(
                blobs,
                advance,
                max_connections=self.params["max_connections"],
                parts=self.params["parts"],
                part_size=self.params["part_size"],
            )
        except DownloadFailed as err:
            self.stats["bytes_transferred"] = err.transferred
            self.write_complete_manifests()
            model = owner[digest_hex(err.digest)]
            if isinstance(err.cause, StoreError):
                raise SeedError(self.explain(err.cause, model, err.digest, err.size), err.cause,
                                extra=dict(store_error=err.cause.kind)) from err
            raise SeedError(
                f"downloading blob {err.digest} of {model.ref.short} from registry {model.ref.host}: {err.cause}; "
                f"the manifest was not written, a rerun resumes{self.written_note()}",
                err.cause, digest=err.digest,
            ) from err
        finally:
            self.report.remove()
        seconds = time.monotonic() - started
        transferred = sum(received.values())
        self.stats.update(
            bytes_transferred=transferred,
            seconds=round(seconds, 3),
            bytes_per_second=round(transferred / seconds, 1) if seconds > 0 else 0.0,
        )
        for model, digest, _size in wanted:
            model.downloaded.append(digest)

    def explain(self, err, model, digest, size):
        where = f"blob {digest} ({human_bytes(size)}) of {model.ref.short} from registry {model.ref.host}"
        written = self.written_note()
        if err.kind == "digest":
            return (
                f"{where} failed verification: its content has sha256 {err.found}, not {digest}. The registry "
                "(or a proxy or CDN in between) served corrupt data; the partial file was removed and the "
                f"manifest of {model.ref.short} was not written. Repair the registry's copy (push the model again) "
                f"and run again{written}"
            )
        if err.kind == "disk_full":
            return (
                f"no space left in {self.store.root} while writing {where} ({self.free()} free): grow the volume "
                f"or free space, then run again; the download resumes from the -partial file and the manifest "
                f"was not written{written}"
            )
        if err.kind in ("short", "size"):
            return (
                f"{where}: {err}. The connection broke off or the registry sent the wrong length; the manifest "
                f"was not written, run again to resume{written}"
            )
        return f"{where}: {err}; the manifest was not written{written}"

    def free(self):
        try:
            return human_bytes(self.store.free_bytes())
        except OSError:
            return "unknown"

    def write_manifest(self, model):
        try:
            self.store.write_manifest(model.ref, model.manifest)
        except StoreError as err:
            raise SeedError(f"writing the manifest of {model.ref.short} into {self.store.root}: {err}", err) from err
        model.written = True
        model.after = self.store.read_manifest(model.ref)

    def write_complete_manifests(self):
        """After a failed download: the models whose blobs all arrived are written all the same."""
        for model in self.models:
            if model.manifest and model.action != "none" and not self.store.missing(model.manifest):
                self.write_manifest(model)

    def written_note(self):
        done = [m.ref.short for m in self.models if m.written]
        return f" ({', '.join(done)} complete and written)" if done else ""

    def prune_replaced(self, model):
        """Blobs of the manifest a moved tag replaced, that no manifest uses any more (as `ollama pull` prunes)."""
        if model.before is None or self.current(model, model.before):
            return
        removed, _freed, kept = self.store.prune([d for d, _s in descriptors(model.before.manifest)])
        if kept:
            self.module.warn(f"kept the blobs of the former manifest of {model.ref.short}: {kept}")
        model.removed = removed

    # -- states -------------------------------------------------------------------------------

    def present(self, latest):
        for model in self.models:
            self.plan(model, latest)
            if model.served:
                self.plan_served(model)
        todo = [m for m in self.models if m.changed]
        served = [m for m in self.models if m.served and m.served.changed]
        if not todo and not served:
            return self.finish()
        self.writable()
        if self.module.check_mode:
            return self.check_report(todo, served)
        self.free_space(self.needed(todo))
        try:
            with self.locked("latest" if latest else "present"):
                # another seeder may have written some of it while this one waited
                for model in todo:
                    self.plan(model, latest)
                todo = [m for m in self.models if m.changed]
                self.download([(m, d, s) for m in todo for d, s in m.todo])
                for model in todo:
                    self.write_manifest(model)
                    if latest:
                        self.prune_replaced(model)
                # from the models as the store now holds them, each complete
                for model in self.models:
                    if model.served:
                        self.write_served(model)
        except StoreError as err:
            raise self.lock_failed(err) from err
        return self.finish()

    # -- the served model ---------------------------------------------------------------------

    def derive_served(self, model):
        """The served model of `model`, from its base as the store holds it now."""
        try:
            base = self.store.read_manifest(model.ref)
            return derive(self.store, model.ref, base and base.manifest, {"num_thread": self.params["num_thread"]})
        except (DerivedModelError, StoreError) as err:
            raise SeedError(f"deriving {model.served.ref.short} (num_thread {self.params['num_thread']}) from "
                            f"{model.ref.short}: {err}; {model.served.ref.short} was not written{self.written_note()}",
                            err) from err

    def served_manifest(self, model):
        """The served model's manifest in the store, None when there is none or it is unreadable (then replaced)."""
        try:
            return self.store.read_manifest(model.served.ref)
        except StoreError as err:
            if err.kind != "corrupt":
                where = f"{self.store.root} for {model.served.ref.short}"
                raise SeedError(f"reading the store {where}: {err}", err) from err
            self.module.warn(f"{err}; writing {model.served.ref.short} replaces it")
            return None

    def plan_served(self, model):
        """Whether the served model would be written; with its base still to be seeded its bytes are not known yet."""
        served = model.served
        current = self.served_manifest(model)
        served.before = current.digest if current else None
        if model.changed:
            served.after, served.changed = None, True
            return
        derived = self.derive_served(model)
        served.after = derived.manifest_digest
        served.changed = served.before != served.after or any(
            not self.store.blob_complete(digest, len(body)) for digest, body in derived.blobs)

    def write_served(self, model):
        """Write the served model's blobs, then its manifest, where the store does not hold those bytes already;
        the blobs of the manifest it replaces that no other manifest uses go, as `ollama create` prunes them."""
        served = model.served
        derived = self.derive_served(model)
        current = self.served_manifest(model)
        served.before = current.digest if current else None
        try:
            written = self.store.put_model(served.ref, derived.blobs, derived.manifest)
        except StoreError as err:
            raise SeedError(f"writing {served.ref.short} into {self.store.root}: {err}; it was not written"
                            f"{self.written_note()}", err) from err
        served.after, served.changed, served.written = derived.manifest_digest, written, written
        if current and served.before != served.after:
            _removed, _freed, kept = self.store.prune([d for d, _s in descriptors(current.manifest)])
            if kept:
                self.module.warn(f"kept the blobs of the former {served.ref.short}: {kept}")

    def needed(self, models):
        blobs = {digest_hex(d): (d, s) for m in models for d, s in m.todo}
        return sum(s - self.store.partial_bytes(d, s) for d, s in blobs.values())

    def check_report(self, models, served=()):
        needed = self.needed(models)
        for model in models:
            model.downloaded = [d for d, _s in model.todo]
        self.stats["bytes_transferred"] = needed
        what = "repair" if self.params["state"] == "verified" else "seed"
        said = []
        if models:
            said.append(f"would {what} {', '.join(m.ref.short for m in models)} in {self.store.root}: "
                        f"{human_bytes(needed)} to download")
        if served:
            said.append(f"would write {', '.join(m.served.ref.short for m in served)} (num_thread "
                        f"{self.params['num_thread']}) into {self.store.root}")
        return self.finish(msg="; ".join(said))

    def verified(self):
        # without a repair, a store that does not exist holds nothing to verify: no lock, nothing created for it
        if self.module.check_mode or not (self.params["repair"] or os.path.isdir(self.store.root)):
            return self.verify_all()
        try:
            with self.locked("verified"):
                return self.verify_all()
        except StoreError as err:
            raise self.lock_failed(err) from err

    def verify_all(self):
        check = self.module.check_mode
        for model in self.models:
            model.before = self.local(model)
            if model.before is not None:
                self.verify(model)
        broken = [m for m in self.models if m.before is None or m.missing or m.corrupt]
        for model in self.models:
            if model not in broken:
                model.after = model.before
        if not broken:
            return self.finish()
        if not self.params["repair"]:
            raise SeedError(
                "; ".join(self.damage(m) for m in broken) + ". Set repair: true to download what is missing or "
                "corrupt again (the corrupt files are removed first)",
                kind="damaged", path=self.store.root,
            )
        for model in broken:
            if model.before is None:
                self.plan(model, latest=False)  # not in the store at all: repaired by seeding it
            else:
                model.manifest = model.before.manifest
                broken_blobs = set(model.missing) | set(model.corrupt)
                model.todo = [(d, s) for d, s in descriptors(model.manifest) if d in broken_blobs]
                model.after = model.before
            model.action = "repaired"
        self.writable()
        if check:
            return self.check_report(broken)
        self.free_space(self.needed(broken))
        for model in broken:
            for digest in model.corrupt:
                self.store.remove_blob(digest)
        self.download([(m, d, s) for m in broken for d, s in m.todo])
        for model in broken:
            if model.before is None:
                self.write_manifest(model)
            else:
                model.after = self.store.read_manifest(model.ref)
        return self.finish()

    def verify(self, model):
        blobs = descriptors(model.before.manifest)
        progress = DownloadProgress(sum(s for _d, s in blobs))

        def advance(count):
            progress.add(count)
            if self.report.due():
                self.report.write(progress.snapshot(model.ref.short))

        try:
            for number, (digest, size) in enumerate(blobs, 1):
                progress.status = f"verifying blob {number}/{len(blobs)} {digest[:19]} ({human_bytes(size)})"
                self.report.write(progress.snapshot(model.ref.short), force=True)
                status, found = self.store.verify_blob(digest, size, advance)
                if status == "missing":
                    model.missing.append(digest)
                elif status == "corrupt":
                    model.corrupt[digest] = found
        except StoreError as err:
            raise SeedError(f"verifying {model.ref.short} in {self.store.root}: {err}", err) from err
        finally:
            self.report.remove()

    def damage(self, model):
        if model.before is None:
            return f"{model.ref.short} is not in the store {self.store.root} (no {model.manifest_path})"
        parts = []
        if model.missing:
            parts.append("missing: " + ", ".join(model.missing))
        if model.corrupt:
            parts.append("corrupt: " + ", ".join(f"{d} ({found})" for d, found in model.corrupt.items()))
        return f"{model.ref.short} in {self.store.root} has blobs {'; '.join(parts)}"

    def absent(self):
        for model in self.models:
            model.before = self.local(model)
            if model.before is not None or os.path.lexists(model.manifest_path):
                model.action = "removed"
        if self.module.check_mode or not any(m.changed for m in self.models):
            return self.finish()
        self.freed = 0
        try:
            with self.locked("absent"):
                for model in self.models:
                    if model.changed:
                        self.remove(model)
        except StoreError as err:
            raise self.lock_failed(err) from err
        return self.finish()

    def remove(self, model):
        try:
            removed, freed, kept = self.store.remove(model.ref)
        except StoreError as err:
            raise SeedError(f"removing {model.ref.short} from {self.store.root}: {err}", err) from err
        if kept:
            self.module.warn(f"removed the manifest of {model.ref.short} but kept its blobs: {kept}")
        model.removed = removed
        self.freed += freed


def validate(params):
    """The options that argument_spec cannot check, as model references; InputError naming the option, the value
    and the fix."""
    if not os.path.isabs(params["path"]):
        raise InputError(
            f"path {params['path']!r} is relative: give the absolute path of the store (what OLLAMA_MODELS is "
            "for the server that reads it), e.g. /var/lib/ollama/models"
        )
    for option in ("parts", "max_connections"):
        if params[option] < 1:
            raise InputError(
                f"{option} must be at least 1, got {params[option]}: it is a number of parallel connections"
            )
    try:
        params["part_size"] = parse_size(params["part_size"])
    except ValueError as err:
        raise InputError(
            f"part_size must be a size such as 64MiB, 1G or a number of bytes, got {params['part_size']!r}"
        ) from err
    if params["part_size"] is not None and params["part_size"] < MIN_PART_SIZE:
        raise InputError(
            f"part_size must be at least 1MiB ({MIN_PART_SIZE} bytes), got {params['part_size']} bytes: smaller "
            "parts cost more in requests than they gain; leave it unset for Ollama's sizes"
        )
    check_lock_timeout(params["lock_timeout"])
    if params["repair"] and params["state"] != "verified":
        raise InputError(f"repair applies to state=verified, not state={params['state']}")
    # ModelRefError, an InputError, names the reference and what is wrong
    refs = parse_models(params["name"], "name", login=bool(params.get("registry_username")))
    return refs, served_refs(refs, params)


def served_refs(refs, params):
    """The served model of each model with num_thread set (None each without); InputError for a served name that
    cannot be, or that is a model of the task itself (deriving would overwrite it)."""
    num_thread = params["num_thread"]
    if isinstance(num_thread, bool) or num_thread < 0:
        raise InputError(
            f"num_thread must be a whole number of threads, at least 1 (or 0 for no served model), got {num_thread!r}"
        )
    if not num_thread:
        return [None] * len(refs)
    if params["state"] not in ("present", "latest"):
        raise InputError(
            f"num_thread applies to state=present or latest, not state={params['state']}: list the served models "
            "in name to remove or verify them"
        )
    served = []
    for ref in refs:
        try:
            check_local_source(ref)
        except DerivedModelError as err:
            raise InputError(f"name {ref.short!r} with num_thread {num_thread}: {err}") from err
        aligned = ModelRef.parse(served_name(ref.short, num_thread))
        if any(aligned.key() == other.key() for other in refs):
            raise InputError(
                f"name lists both {ref.short} and {aligned.short}, the model num_thread {num_thread} derives from it: "
                "deriving would overwrite a model the task seeds; seed the base model only"
            )
        served.append(aligned)
    return served


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", required=True, aliases=["model"]),
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent", "latest", "verified"], default="present"),
            repair=dict(type="bool", default=False),
            max_connections=dict(type="int", default=DEFAULT_MAX_CONNECTIONS),
            parts=dict(type="int", default=DEFAULT_PARTS),
            part_size=dict(type="str"),
            lock_timeout=dict(type="float"),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            timeout=dict(type="float", default=60),
            progress_interval=dict(type="float", default=10),
            num_thread=dict(type="int", default=0),
            **REGISTRY_ARGS,
        ),
        required_together=REGISTRY_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    seeder = None
    try:
        # the options are checked before the store or the registry is touched
        seeder = StoreSeeder(module, *validate(module.params))
        result = seeder.run()
    except CollectionError as err:
        # without a seeder only the options were checked: there is no model to report on yet
        done = seeder.failed(err) if seeder else dict(changed=False, error=err.details())
        module.fail_json(msg=str(err), **done)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
