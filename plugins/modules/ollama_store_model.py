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
  prune:
    description:
      - After the O(state)'s work, remove every blob file no manifest in the store references (what removed
        models, moved tags or replaced served models left behind), and report the bytes freed.
      - Taken under the store lock, so it never runs while a seeder writes; the references are read again
        once the lock is held. Partial downloads stay, since a rerun of the seed resumes from them.
      - Refuses, removing nothing, when a manifest cannot be read, since the blobs it uses are then unknown.
      - Refuses too (V(busy)), removing nothing, while another process holds one of the store's partial
        downloads open - an Ollama server's pull, which takes no store lock, and whose completed blobs no
        manifest names until it ends. As root every process is seen, as another user only its own; a pull that
        starts once the prune has begun is not.
      - It removes blobs, never a manifest; a model a server still serves is one whose manifest stays. On a
        claim the O(state=absent) of a model that a pod serves is refused by the C(model_cache) role.
    type: bool
    default: false
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
- name: Remove the previous model and every blob nothing references any more, reporting the bytes freed
  aiplatform.ollama.ollama_store_model:
    name: qwen2.5:32b
    path: /var/lib/ollama/models
    state: absent
    prune: true
  register: pruned
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
  description: Bytes of blob files removed with O(state=absent) and O(prune) (would be, in check mode).
  returned: when O(state=absent) removed a model, or with O(prune)
  type: int
blobs_pruned:
  description: Digests of the blobs O(prune) removed (would remove, in check mode), none of them referenced.
  returned: with O(prune)
  type: list
  elements: str
summary:
  description:
    - One line for each model (what the store holds of it and what was, or in check mode would be, done, with
      its served model), then one for the download unless O(state=absent); what the model_cache role prints.
  returned: always
  type: list
  elements: str
  sample:
    - "qwen2.5:0.5b: sha256:a3b1c9d0... (379.2 MiB), seeded; served as qwen2.5:0.5b-t4, written"
    - downloaded 379.2 MiB in 3.2 s (118.5 MiB/s)
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
      registry's kind such as V(not_found) or V(unreachable), or the store's such as V(digest), V(locked), V(io);
      V(busy) for a prune during a server's pull);
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

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_download import DEFAULT_MAX_CONNECTIONS  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_partial import DEFAULT_PARTS, MIN_PART_SIZE  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.derived_model import (  # noqa: E402
    DerivedModelError,
    check_local_source,
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
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import check_lock_timeout  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.store_seed import StoreSeeder  # noqa: E402

# part_size's own grammar, not a Kubernetes quantity (module_utils/k8s_quantity.py): its documented K, M, G
# are powers of 1024 and it takes the B/iB spellings (64MiB, 64mb), where Kubernetes reads 1G as 10^9 bytes
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value):
    """`64MiB`, `64M`, `1G`, `104857600` -> bytes (K, M, G, T are powers of 1024); None when unset."""
    if value is None or value == "":
        return None
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(value)
    number, unit = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


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
            prune=dict(type="bool", default=False),
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
