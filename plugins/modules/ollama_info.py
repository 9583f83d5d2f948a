#!/usr/bin/python
# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_info
short_description: Report an Ollama server's version, local models and loaded models
version_added: 1.0.0
description:
  - Reads C(/api/version), C(/api/tags) and C(/api/ps) of an Ollama server. Never changes anything.
author:
  - AI Platform team (@aiplatform)
extends_documentation_fragment:
  - aiplatform.ollama.ollama
  - aiplatform.ollama.attributes
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    details: Nothing changes, so there is nothing to compare.
  platform:
    support: full
    details: Runs on any host that reaches the Ollama server.
options: {}
seealso:
  - module: aiplatform.ollama.ollama_model
  - module: aiplatform.ollama.ollama_health
"""

EXAMPLES = r"""
- name: What is on the server
  aiplatform.ollama.ollama_info:
    host: http://ollama.ollama.svc.cluster.local:11434
  register: ollama

- name: Show the models and what is loaded
  ansible.builtin.debug:
    msg: >-
      {{ ollama.version }}: {{ ollama.models | map(attribute='name') }}
      loaded {{ ollama.loaded | map(attribute='name') }}
"""

RETURN = r"""
version:
  description: Version of the Ollama server.
  returned: always
  type: str
  sample: 0.18.3
models:
  description: Models in the server's store.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The model as the server lists it.
      type: str
      sample: qwen2.5:72b
    model:
      description: The normalised reference.
      type: str
      sample: registry.ollama.ai/library/qwen2.5:72b
    digest:
      description: Digest of the local manifest.
      type: str
      sample: sha256:424bad2cc13f...
    size:
      description: Bytes of all layers.
      type: int
    modified:
      description: When the model was last pulled or created (RFC 3339).
      type: str
    family:
      description: Model family from the GGUF metadata.
      type: str
      sample: qwen2
    parameter_size:
      description: Parameter count as Ollama shows it.
      type: str
      sample: 72.7B
    quantization:
      description: Quantisation level.
      type: str
      sample: Q4_K_M
loaded:
  description: Models loaded in memory (C(/api/ps)).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The model as the server lists it.
      type: str
    digest:
      description: Digest of its manifest.
      type: str
    size:
      description: Bytes of memory it takes.
      type: int
    size_vram:
      description: Bytes of that in GPU memory (0 on CPU-only servers).
      type: int
    expires_at:
      description: When the server unloads it unless it is used again.
      type: str
    context_length:
      description: Context length it was loaded with.
      type: int
error:
  description: Why it failed - C(kind); where known C(url) (no query), C(status), a C(body) excerpt, the subject.
  returned: failure
  type: dict
  sample: {kind: unreachable, url: "http://ollama.ollama.svc.cluster.local:11434/api/version"}
"""

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError, InputError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.header_secrets import HeaderRedactingModule  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, ModelRefError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import (  # noqa: E402
    OLLAMA_COMMON_ARGS,
    OllamaClient,
    OllamaError,
)


def _digest(value):
    return "sha256:" + value if value and not value.startswith("sha256:") else (value or "")


def _full(name):
    try:
        return ModelRef.parse(name).full
    except ModelRefError:
        return name


def describe_model(entry):
    details = entry.get("details") or {}
    name = entry.get("name") or entry.get("model") or ""
    return {
        "name": name,
        "model": _full(name),
        "digest": _digest(entry.get("digest")),
        "size": int(entry.get("size") or 0),
        "modified": entry.get("modified_at", ""),
        "family": details.get("family", ""),
        "parameter_size": details.get("parameter_size", ""),
        "quantization": details.get("quantization_level", ""),
    }


def describe_loaded(entry):
    name = entry.get("name") or entry.get("model") or ""
    return {
        "name": name,
        "model": _full(name),
        "digest": _digest(entry.get("digest")),
        "size": int(entry.get("size") or 0),
        "size_vram": int(entry.get("size_vram") or 0),
        "expires_at": entry.get("expires_at", ""),
        "context_length": int(entry.get("context_length") or 0),
    }


def main():
    module = HeaderRedactingModule(argument_spec=dict(OLLAMA_COMMON_ARGS), supports_check_mode=True)
    try:
        result = read_state(module.params)
    except CollectionError as err:
        module.fail_json(msg=str(err), changed=False, error=err.details())
    module.exit_json(changed=False, **result)


def read_state(params):
    try:
        client = OllamaClient.from_params(params)
    except ValueError as err:
        raise InputError(str(err)) from err
    try:
        return {
            "version": client.version() or "",
            "models": [describe_model(m) for m in client.models()],
            "loaded": [describe_loaded(m) for m in client.running()],
        }
    except OllamaError as err:
        raise OllamaError(f"reading the state of the Ollama server at {client.base_url}: {err}", kind=err.kind,
                          status=err.status, body=err.body, url=err.url) from err


if __name__ == "__main__":
    main()
