#!/usr/bin/python
# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_store_model
short_description: Seed a model into an Ollama model store directory straight from its registry
version_added: 1.0.0
description:
  - Makes sure a model is present in, or absent from, an Ollama model store directory (what
    C(OLLAMA_MODELS) points at) without any Ollama server. The managed host downloads the manifest
    and blobs from the registry (the registry v2 API, as C(ollama pull) speaks it) and writes the
    store layout Ollama reads, C(manifests/<registry>/<namespace>/<model>/<tag>) and C(blobs/sha256-<hex>).
  - Pre-seeding the store a server will use keeps the download out of the server's start-up (no
    C(postStart) pull that blocks readiness, no page cache charged to the server's memory limit).
  - Every blob is verified by sha256 while it streams into a C(-partial) file and renamed into place
    atomically; the manifest is written last, so a failure never leaves a manifest that names a
    missing blob. An interrupted download resumes from its C(-partial) file; Ollama removes such
    files when it starts.
  - V(present) downloads only the blobs that are missing or incomplete; a store that already holds
    the complete model is left alone without contacting the registry.
  - The download's progress (percentage, bytes, rate, ETA, current blob) is printed by the action
    plugin of this module while the task runs, see O(progress_interval).
author:
  - AI Platform team (@aiplatform)
attributes:
  check_mode:
    support: full
    description:
      - Reports whether the model would be seeded or removed, with the registry's digest and the bytes to download.
  diff_mode:
    support: full
    description: Shows the model's manifest digest and size in the store before and after.
  platform:
    platforms: posix
    support: full
    description: Runs on the host whose filesystem holds the store; that host downloads the model.
extends_documentation_fragment:
  - aiplatform.ollama.ollama_registry
options:
  name:
    description:
      - The model reference, as C(ollama pull) takes it.
      - V(qwen2.5:72b) means V(registry.ollama.ai/library/qwen2.5:72b); a private registry is given as
        V(registry.example.com:5000/library/qwen2.5:72b).
      - Validated before anything is read or written.
    type: str
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
      - V(present) downloads the model when the store does not hold it completely.
      - V(absent) removes the model's manifest, then the blobs no other manifest in the store uses.
    type: str
    choices: [present, absent]
    default: present
  validate_certs:
    description:
      - Verify the TLS certificates of the registry and of the blob host it redirects to.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA certificates that signed the registry's certificate.
    type: path
  timeout:
    description:
      - Seconds to wait for the registry to accept a connection and for each read of a download.
    type: float
    default: 60
  progress_interval:
    description:
      - Seconds between two progress lines the action plugin prints during a download. V(0) runs the
        module without progress output (and without the asynchronous job that carries it).
      - Ignored when the task itself sets C(async).
    type: float
    default: 10
  progress_file:
    description:
      - File on the managed host where the module keeps the latest download progress as JSON, for the
        action plugin to read. Set by the action plugin; there is no need to set it by hand.
    type: path
seealso:
  - module: aiplatform.ollama.ollama_model
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
"""

EXAMPLES = r"""
- name: Seed qwen2.5:72b into the volume the Ollama pod will mount at /root/.ollama
  aiplatform.ollama.ollama_store_model:
    name: qwen2.5:72b
    path: /mnt/ollama-models/models

- name: Seed from a private plain-HTTP mirror with credentials, progress every 30 seconds
  aiplatform.ollama.ollama_store_model:
    name: registry.internal:5000/library/qwen2.5:7b
    path: /var/lib/ollama/models
    insecure: true
    progress_interval: 30
    registry_username: puller
    registry_password: "{{ vault_registry_token }}"

- name: Remove a model (blobs that other models share stay)
  aiplatform.ollama.ollama_store_model:
    name: qwen2.5:0.5b
    path: /var/lib/ollama/models
    state: absent
"""

RETURN = r"""
model:
  description: The normalised model reference.
  returned: always
  type: str
  sample: registry.ollama.ai/library/qwen2.5:72b
name:
  description: The model as Ollama lists it.
  returned: always
  type: str
  sample: qwen2.5:72b
action:
  description: What was done (or would be done in check mode).
  returned: always
  type: str
  sample: seeded
  choices: [none, seeded, removed]
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
  description: Digests of the blobs downloaded (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
blobs_removed:
  description: Digests of the blobs removed with O(state=absent).
  returned: always
  type: list
  elements: str
bytes_freed:
  description: Bytes of blob files removed with O(state=absent).
  returned: when O(state=absent) removed the model
  type: int
bytes_transferred:
  description: Bytes downloaded by this run (in check mode, that would be); blobs already in the store do not count.
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
"""

import os  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, ModelRefError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (  # noqa: E402
    REGISTRY_ARGS,
    REGISTRY_REQUIRED_TOGETHER,
    RegistryClient,
    RegistryError,
    ollama_manifest_digest,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import (  # noqa: E402
    OllamaStore,
    StoreError,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import (  # noqa: E402
    DownloadProgress,
    ProgressFile,
    human_bytes,
)


class SeedTask:
    def __init__(self, module, ref):
        self.module = module
        self.ref = ref
        self.params = module.params
        self.store = OllamaStore(self.params["path"])
        self.result = dict(
            changed=False,
            model=ref.full,
            name=ref.short,
            action="none",
            digest="",
            size=0,
            manifest_path=self.store.manifest_path(ref),
            blobs_downloaded=[],
            blobs_removed=[],
            bytes_transferred=0,
            seconds=0.0,
            bytes_per_second=0.0,
        )

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **dict(self.result, **extra))

    def local(self):
        try:
            return self.store.read_manifest(self.ref)
        except StoreError as err:
            if err.kind == "corrupt":
                self.module.warn(f"{err}; seeding {self.ref.short} replaces it")
                return None
            self.fail(f"reading the store {self.store.root} for {self.ref.short}: {err}")

    def registry(self):
        return RegistryClient.from_params(self.ref.host, self.params)

    def resolve(self, client):
        try:
            remote = client.resolve(self.ref.repository, self.ref.tag)
        except RegistryError as err:
            fix = {
                "not_found": "check the model name and tag, or push the model to that registry",
                "unreachable": "this host downloads the model itself: check its network, DNS and proxy "
                "(https_proxy, no_proxy)",
                "timeout": "raise timeout, or check the network between this host and the registry",
                "auth": "set registry_username and registry_password",
            }.get(err.kind, "check the registry")
            self.fail(f"seeding {self.ref.short} into {self.store.root}: {err} ({fix}); nothing was written")
        self.result["registry_digest"] = remote["digest"]
        return remote

    def download(self, client, todo, needed):
        repository = self.ref.repository

        def opener_for(digest):
            def opener(offset):
                resp = client.open_blob(repository, digest, offset)
                status = getattr(resp, "status", None) or resp.getcode()
                return resp, offset if offset and status == 206 else 0

            return opener

        progress = DownloadProgress(needed)
        report = ProgressFile(self.params["progress_file"])

        def advance(count):
            progress.add(count)
            if report.due():
                report.write(progress.snapshot(self.ref.short))

        started = time.monotonic()
        transferred = 0
        try:
            for number, (digest, size) in enumerate(todo, 1):
                progress.status = f"blob {number}/{len(todo)} {digest[:19]} ({human_bytes(size)})"
                report.write(progress.snapshot(self.ref.short), force=True)
                try:
                    transferred += self.store.download_blob(digest, size, opener_for(digest), advance)
                except RegistryError as err:
                    self.fail(
                        f"downloading blob {digest} of {self.ref.short} from registry {self.ref.host}: {err}; "
                        "the manifest was not written, a rerun resumes",
                        bytes_transferred=transferred,
                    )
                except StoreError as err:
                    self.fail(self.explain(err, digest, size), bytes_transferred=transferred, store_error=err.kind)
                self.result["blobs_downloaded"].append(digest)
        finally:
            report.remove()
        seconds = time.monotonic() - started
        self.result.update(
            bytes_transferred=transferred,
            seconds=round(seconds, 3),
            bytes_per_second=round(transferred / seconds, 1) if seconds > 0 else 0.0,
        )

    def explain(self, err, digest, size):
        where = f"blob {digest} ({human_bytes(size)}) of {self.ref.short} from registry {self.ref.host}"
        if err.kind == "digest":
            return (
                f"{where} failed verification: its content has sha256 {err.found}, not {digest}. The registry "
                "(or a proxy or CDN in between) served corrupt data; the partial file was removed and the "
                f"manifest of {self.ref.short} was not written. Repair the registry's copy (push the model again) "
                "and run again"
            )
        if err.kind == "disk_full":
            return (
                f"no space left in {self.store.root} while writing {where} ({self.free()} free): grow the volume "
                "or free space, then run again; the download resumes from the -partial file and the manifest "
                "was not written"
            )
        if err.kind in ("short", "size"):
            return (
                f"{where}: {err}. The connection broke off or the registry sent the wrong length; the manifest "
                "was not written, run again to resume"
            )
        return f"{where}: {err}; the manifest was not written"

    def free(self):
        try:
            return human_bytes(self.store.free_bytes())
        except OSError:
            return "unknown"

    def present(self):
        before = self.local()
        if before and not self.store.missing(before.manifest):
            self.finish(before, before)
        client = self.registry()
        remote = self.resolve(client)
        todo = self.store.missing(remote["manifest"])
        needed = sum(size - self.store.partial_bytes(digest, size) for digest, size in todo)
        self.result.update(changed=True, action="seeded", blobs_downloaded=[d for d, _s in todo])
        planned = {"digest": remote["ollama_digest"], "size": remote["size"]}
        if self.module.check_mode:
            self.result.update(
                bytes_transferred=needed,
                msg=f"would seed {self.ref.short} into {self.store.root}: {human_bytes(needed)} to download",
            )
            self.finish(before, planned, planned=True)
        try:
            free = self.store.free_bytes()
        except OSError:
            free = None
        if free is not None and needed > free:
            self.fail(
                f"seeding {self.ref.short} into {self.store.root} needs {human_bytes(needed)} more, but its "
                f"filesystem has {human_bytes(free)} free: grow the volume or free space; nothing was written"
            )
        self.result["blobs_downloaded"] = []
        self.download(client, todo, needed)
        try:
            digest = self.store.write_manifest(self.ref, remote["manifest"])
        except StoreError as err:
            self.fail(f"writing the manifest of {self.ref.short} into {self.store.root}: {err}")
        if digest != ollama_manifest_digest(remote["manifest"]):
            self.fail(f"the manifest written for {self.ref.short} has digest {digest}, expected the one Ollama writes")
        self.finish(before, self.store.read_manifest(self.ref))

    def absent(self):
        before = self.local()
        if before is None and not os.path.lexists(self.store.manifest_path(self.ref)):
            self.finish(None, None)
        self.result.update(changed=True, action="removed")
        if self.module.check_mode:
            self.finish(before, None)
        try:
            removed, freed, kept = self.store.remove(self.ref)
        except StoreError as err:
            self.fail(f"removing {self.ref.short} from {self.store.root}: {err}")
        if kept:
            self.module.warn(f"removed the manifest of {self.ref.short} but kept its blobs: {kept}")
        self.result.update(blobs_removed=removed, bytes_freed=freed)
        self.finish(before, None)

    def finish(self, before, after, planned=False):
        def view(entry):
            if entry is None:
                return {}
            if planned and entry is after:
                return dict(entry)
            return {"digest": entry.digest, "size": entry.size}

        after_state = view(after)
        self.result.update(digest=after_state.get("digest", ""), size=after_state.get("size", 0))
        if self.module._diff:
            header = f"{self.ref.short} in {self.store.root}"
            self.result["diff"] = {
                "before": dict(view(before), model=self.ref.full) if before else {},
                "after": dict(after_state, model=self.ref.full) if after_state else {},
                "before_header": header,
                "after_header": header,
            }
        self.module.exit_json(**self.result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["model"]),
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            timeout=dict(type="float", default=60),
            progress_interval=dict(type="float", default=10),
            progress_file=dict(type="path"),
            **REGISTRY_ARGS,
        ),
        required_together=REGISTRY_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    try:
        ref = ModelRef.parse(module.params["name"])
    except ModelRefError as err:
        module.fail_json(msg=str(err), changed=False)
    task = SeedTask(module, ref)
    if module.params["state"] == "absent":
        task.absent()
    task.present()


if __name__ == "__main__":
    main()
