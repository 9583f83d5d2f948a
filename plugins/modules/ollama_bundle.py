#!/usr/bin/python
# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_bundle
short_description: Carry Ollama models into an air-gapped site as one bundle file
version_added: 1.2.0
description:
  - Exports models from an Ollama model store directory (what C(OLLAMA_MODELS) points at), or straight
    from their registry, into ONE uncompressed tar file, imports such a bundle into a store directory,
    or pushes it into a private registry (the mirror a seed Job or C(ollama pull) then pulls from). No
    Ollama server is needed, and the air-gapped site needs no access to the source registry.
  - An export straight from the registry (O(state=exported) without O(store)) reads each model's
    manifest from the registry its reference names (V(registry.ollama.ai) unless it names another, as
    C(ollama pull)) and streams every blob from there into its member of the bundle, checking its sha256
    on the way; no store is written and nothing is staged on disk but the bundle itself. The bundle is
    the same, byte for byte, as an export of a store seeded from that registry.
  - The bundle holds the store's own layout, C(manifests/<registry>/<namespace>/<model>/<tag>) and
    C(blobs/sha256-<hex>), plus an C(index.json) (format version, each model with the digest and
    size of its manifest and of every blob). It is written under a temporary name and renamed only
    when complete.
  - An import takes the store's lock (C(flock) on C(.ollama_store.lock)), the one
    M(aiplatform.ollama.ollama_store_model) takes, so an import and a seed of the same store never write
    at once; see O(lock_timeout). The files an interrupted seed left for a blob the import writes
    (C(sha256-<hex>-partial) and its C(.json)) are removed once that blob is in place, since no seeder
    resumes a blob the store holds complete; those of other blobs are left to the seeder.
  - The progress (percentage, bytes, rate, ETA, the blob at hand) is printed by the action plugin of this
    module while the task runs, see O(progress_interval).
  - Importing and pushing trust nothing in the file. Every member must be a regular file (or a
    directory) with a relative name without C(..), named in the index with the size the index gives;
    symbolic links, hard links, devices, absolute paths and unexpected members make the task fail
    before anything is written. Every blob is checked against its sha256 while it streams into a
    temporary C(-partial) file; the blobs are renamed into place only once all of them matched, and
    the manifests are written last. A failure removes everything the import created.
  - All three states are idempotent. A bundle already holding exactly these models is not rewritten
    (for an export from the registry, only the manifests are read to know it, no blob is downloaded);
    blobs the store (or the registry's repository) already holds are skipped, and a manifest that is
    already there byte for byte is left alone.
author:
  - AI Platform team (@aiplatform)
attributes:
  check_mode:
    support: full
    details:
      - Reports the models, blobs and bytes that would be written. Importing and pushing still read
        and verify every blob that would be written, so check mode also proves the bundle intact.
        Exporting from the registry reads only the manifests there, no blob.
  diff_mode:
    support: none
    details: The results list what was written; there is no diff.
  platform:
    support: full
    details: Runs on the host that holds the bundle file (and the store); that host talks to the registry.
extends_documentation_fragment:
  - aiplatform.ollama.attributes
  - aiplatform.ollama.ollama_registry
  - aiplatform.ollama.ollama_registry.tls
options:
  state:
    description:
      - V(exported) writes the bundle O(path) holding O(models) from the store O(store), or, without
        O(store), straight from the registry of each model.
      - V(imported) makes the store O(store) hold every model of the bundle O(path).
      - V(pushed) makes the registry O(registry) hold every model of the bundle O(path), each as
        C(<registry>/<namespace>/<model>:<tag>) (the namespace, model and tag the bundle has).
    type: str
    choices: [exported, imported, pushed]
    required: true
  path:
    description:
      - The bundle file. Its directory must exist for V(exported).
      - V(exported) never replaces a file at O(path) that is not a valid model bundle.
    type: path
    required: true
  store:
    description:
      - The model store directory, the value C(OLLAMA_MODELS) has for the server that uses it.
      - Required with O(state=imported); created when missing.
      - With O(state=exported), the store to read the models from; leave it unset to export them
        straight from their registry instead (with O(insecure), O(registry_username),
        O(registry_password), O(validate_certs), O(ca_path) and O(timeout)).
      - Never import into a store a running Ollama server owns unless it runs with C(OLLAMA_NOPRUNE=1),
        since its start-up prune removes the blobs of a model whose manifest is not written yet.
    type: path
  models:
    description:
      - The models to export, as C(ollama pull) names them (V(qwen2.5:72b) is
        V(registry.ollama.ai/library/qwen2.5:72b); a private registry is given as
        V(registry.internal:5000/library/qwen2.5:72b)). Each must be complete in O(store).
      - Without O(store), each is read from the registry its reference names; with O(registry_username)
        they must all come from one registry.
      - Required with O(state=exported).
    type: list
    elements: str
  registry:
    description:
      - The registry to push to, C(host) or C(host:port) (V(registry.internal:5000)).
      - Required with O(state=pushed), refused with O(state=exported) (each model's reference names the
        registry it is exported from).
    type: str
  lock_timeout:
    description:
      - With O(state=imported), seconds to wait for another writer of the same store (a seeder,
        M(aiplatform.ollama.ollama_store_model), or another import) to finish before failing, naming it;
        nothing is written then.
      - Unset, wait as long as it runs. Its lock goes with its process, so a killed seeder never blocks one.
    type: float
  progress_interval:
    description:
      - Seconds between two progress lines the action plugin prints while the bundle is written, imported
        or pushed (and while an import re-checks the blobs the store already holds).
        V(0) runs the module without progress output (and without the asynchronous job that carries it).
      - Ignored when the task itself sets C(async).
    type: float
    default: 10
seealso:
  - module: aiplatform.ollama.ollama_store_model
notes:
  - The registry pushed to must accept uploads (the OCI distribution API, monolithic blob upload).
    Anonymous, basic and bearer-token access are supported, with the credentials in
    O(registry_username) and O(registry_password); the same holds for a registry exported from, whose
    blob downloads may redirect to another host (a CDN), as those of V(registry.ollama.ai) do.
  - An export from the registry that fails (a blob whose sha256 does not match, a broken or short
    download) names the blob, the model and the registry and leaves no bundle file; a rerun starts over.
  - A bundle is as large as its models (GGUF weights do not compress); it is not compressed.
"""

EXAMPLES = r"""
- name: Export qwen2.5:72b straight from registry.ollama.ai, on a host with internet access
  aiplatform.ollama.ollama_bundle:
    state: exported
    path: /srv/transfer/qwen2.5-72b.tar
    models:
      - qwen2.5:72b
    progress_interval: 30

- name: Export a model from a private registry that needs a login
  aiplatform.ollama.ollama_bundle:
    state: exported
    path: /srv/transfer/team-models.tar
    models:
      - registry.example.com/team/summarizer:v3
    registry_username: exporter
    registry_password: "{{ vault_registry_password }}"
    ca_path: /etc/pki/registry-ca.pem

- name: Export qwen2.5:72b from the store a seed filled
  aiplatform.ollama.ollama_bundle:
    state: exported
    path: /srv/transfer/qwen2.5-72b.tar
    store: /var/lib/ollama/models
    models:
      - qwen2.5:72b

- name: Import the bundle into the store a server will use (after the copy into the air-gapped site)
  aiplatform.ollama.ollama_bundle:
    state: imported
    path: /srv/transfer/qwen2.5-72b.tar
    store: /mnt/ollama-models/models
    lock_timeout: 600
    progress_interval: 30

- name: Fill the private mirror the seed Job pulls from
  aiplatform.ollama.ollama_bundle:
    state: pushed
    path: /srv/transfer/qwen2.5-72b.tar
    registry: registry.internal:5000
    registry_username: pusher
    registry_password: "{{ vault_registry_password }}"
"""

RETURN = r"""
models:
  description:
    - The bundle's models. C(name) is the full reference (for V(pushed), the one on O(registry));
      C(digest) the manifest's digest, as Ollama lists it; C(size) the bytes of its blobs; C(action)
      (not with V(exported)) is V(imported), V(pushed) or V(unchanged).
  returned: always
  type: list
  elements: dict
  sample:
    - name: registry.ollama.ai/library/qwen2.5:72b
      digest: sha256:a3b1c9d0...
      size: 47415724544
      action: imported
blobs:
  description: Digests of the blobs written into the bundle, the store or the registry (in check mode, that would be).
  returned: always
  type: list
  elements: str
skipped:
  description: Digests of the blobs already there (in the unchanged bundle, the store or the registry's repository).
  returned: always
  type: list
  elements: str
bytes_written:
  description:
    - Bytes written, blobs and manifests; with V(exported), the size of the bundle file (in check
      mode an upper bound).
  returned: always
  type: int
path:
  description: The bundle file.
  returned: always
  type: str
error:
  description:
    - Why it failed - C(kind); where known C(url) (no query), C(status), a C(body) excerpt, the subject
      (C(member), the bundle member of a blob).
    - An export from the registry fails with C(kind) V(registry) (with C(registry_error), the cause -
      V(not_found), V(unreachable), V(auth), V(timeout), ...) or V(corrupt) (a blob whose sha256 or
      size is not what its manifest says).
  returned: failure
  type: dict
  sample: {kind: unreachable, url: "http://ollama.ollama.svc.cluster.local:11434/api/version"}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.export import export_bundle  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.format import BundleError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.importer import import_bundle  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.progress import BundleProgress  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.bundle.push import PushClient, push_bundle  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError, InputError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (  # noqa: E402
    REGISTRY_ARGS,
    REGISTRY_REQUIRED_TOGETHER,
    RegistryError,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import check_lock_timeout  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import ProgressFile  # noqa: E402

_VERB = {"exported": "exporting", "imported": "importing", "pushed": "pushing"}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["exported", "imported", "pushed"], required=True),
            path=dict(type="path", required=True),
            store=dict(type="path"),
            models=dict(type="list", elements="str"),
            registry=dict(type="str"),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            timeout=dict(type="float", default=60),
            lock_timeout=dict(type="float"),
            progress_interval=dict(type="float", default=10),
            **REGISTRY_ARGS,
        ),
        required_if=[
            ("state", "exported", ("models",)),
            ("state", "imported", ("store",)),
            ("state", "pushed", ("registry",)),
        ],
        required_together=REGISTRY_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    params = module.params
    # the action plugin names the progress file in the environment; without it nothing is written
    progress = BundleProgress(ProgressFile.from_environment())
    try:
        result = run(params, module.check_mode, progress)
    except CollectionError as err:
        module.fail_json(msg=str(err), changed=False, error=err.details(), path=params["path"])
    finally:
        progress.close()
    module.exit_json(**result)


def run(params, check_mode, progress=None):
    state = params["state"]
    for option in ("path", "store", "registry"):
        if params[option] is not None and not params[option].strip():
            raise InputError(f"{option} is empty: give the {option} to use with state={state}")
    check_lock_timeout(params["lock_timeout"])
    if state == "exported" and params["registry"] is not None:
        raise InputError(
            f"registry {params['registry']!r} is the registry to push to (state=pushed): with state=exported each "
            "model is read from the registry its reference names, e.g. registry.internal:5000/library/qwen2.5:72b; "
            "remove registry"
        )
    where = {"exported": params["store"] or "from the registry", "imported": params["store"],
             "pushed": params["registry"]}[state]
    try:
        if state == "exported":
            # without a store, each model comes straight from its registry, with the registry options
            result = export_bundle(params["store"], params["models"], params["path"], check_mode, progress,
                                   registry=params)
        elif state == "imported":
            result = import_bundle(params["path"], params["store"], check_mode, params["lock_timeout"], progress)
        else:
            client = PushClient.from_params(params["registry"].strip(), params)
            result = push_bundle(params["path"], client, check_mode, progress)
    except BundleError as err:
        # the same error, its context (member, url, status) kept, with what the task was doing in front
        err.msg = f"{_VERB[state]} bundle {params['path']} ({where}): {err.msg}"
        raise
    except RegistryError as err:
        if err.kind == "auth" or err.status in (401, 403):
            fix = ("Set registry_username and registry_password to an account that may push there; no model is "
                   "visible there before its manifest is pushed")
        else:
            fix = "The models whose manifest was not pushed are not visible there; run again to continue"
        raise BundleError(
            f"pushing bundle {params['path']} into registry {params['registry']}: {err}. {fix}",
            kind="registry", url=err.url, status=err.status,
        ) from err
    result["path"] = params["path"]
    return result


if __name__ == "__main__":
    main()
