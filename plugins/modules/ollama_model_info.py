#!/usr/bin/python
# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_model_info
short_description: Describe a model and the memory it needs from its GGUF header, without downloading it
version_added: 1.2.0
description:
  - Reads a model's manifest and the GGUF header of its model layer, from the model's registry with
    HTTP Range requests or from a local Ollama model store, and reports its architecture, parameter
    count, quantisation, layer and head counts, context length, vocabulary size and the bytes of its
    weights. Only the header is read (a few MB even for a 47 GB model), never the weights.
  - Reports the memory the model needs loaded on CPU by Ollama for O(num_ctx), O(num_parallel) and
    O(kv_cache_type), term by term (weights, KV cache, compute buffer, runtime), so that a memory
    limit can be checked against the model before it is deployed. The same sizing is the
    P(aiplatform.ollama.model_memory#filter) filter.
  - Never changes anything.
author:
  - AI Platform team (@aiplatform)
extends_documentation_fragment:
  - aiplatform.ollama.ollama_registry
  - aiplatform.ollama.ollama_registry.tls
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
    details: Runs on any host that reaches the registry, or whose filesystem holds the store.
options:
  name:
    description:
      - The model reference, as C(ollama pull) takes it.
      - V(qwen2.5:72b) means V(registry.ollama.ai/library/qwen2.5:72b); a private registry is given as
        V(registry.example.com:5000/library/qwen2.5:72b).
    type: str
    required: true
    aliases: [model]
  path:
    description:
      - An Ollama model store directory (what C(OLLAMA_MODELS) points at) to read the model from instead
        of its registry. The registry options are not used then.
    type: path
  num_ctx:
    description:
      - Context length per request the memory is computed for (Ollama's C(num_ctx), C(OLLAMA_CONTEXT_LENGTH)).
      - Capped at the model's trained context length, as Ollama caps it.
      - The default is Ollama 0.18.3's default where no GPU has 23 GiB or more.
    type: int
    default: 4096
  num_parallel:
    description:
      - Requests served at once (C(OLLAMA_NUM_PARALLEL)); each gets its own O(num_ctx) of KV cache.
    type: int
    default: 1
  kv_cache_type:
    description:
      - Element type of the KV cache (C(OLLAMA_KV_CACHE_TYPE)).
      - Ollama 0.18.3 uses V(q8_0) or V(q4_0) for models on its llama.cpp engine only with
        C(OLLAMA_FLASH_ATTENTION=1) set, and falls back to V(f16) otherwise.
    type: str
    choices: [f16, q8_0, q4_0]
    default: f16
seealso:
  - module: aiplatform.ollama.ollama_store_model
  - module: aiplatform.ollama.ollama_model
  - name: GGUF file format
    description: The header layout the module reads.
    link: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
notes:
  - From a registry, the header is read in ranges of 256 KiB, 512 KiB, 1 MiB and so on, each only the
    bytes not read yet, until the tensor list ends; RV(bytes_read) is at most twice the header (and at
    least the first range, or the whole blob when it is smaller).
  - The memory figures are estimates for Ollama 0.18.3 running the model on its llama.cpp engine
    without a GPU (llama, qwen2, mistral and most dense transformers); the terms are explained in
    RV(memory). They are what the runner can reach with its context and a full batch in use.
  - Proxies for the registry come from the managed host's environment (C(https_proxy), C(no_proxy)).
"""

EXAMPLES = r"""
- name: What qwen2.5:72b needs, before anything is downloaded
  aiplatform.ollama.ollama_model_info:
    name: qwen2.5:72b
    num_ctx: 4096
    num_parallel: 2
  register: qwen

- name: Refuse a memory limit that cannot hold it
  ansible.builtin.assert:
    that: qwen.memory.total_bytes <= ('4Gi' | aiplatform.ollama.k8s_quantity_bytes)
    fail_msg: >-
      qwen2.5:72b needs {{ (qwen.memory.total_bytes / 2**30) | round(1) }} GiB
      ({{ (qwen.weights_bytes / 2**30) | round(1) }} GiB weights,
      {{ (qwen.memory.kv_cache_bytes / 2**30) | round(2) }} GiB KV cache)

- name: The same answer from a seeded store, on the host that holds it
  aiplatform.ollama.ollama_model_info:
    name: qwen2.5:72b
    path: /mnt/ollama-models/models

- name: From a private plain-HTTP mirror with credentials
  aiplatform.ollama.ollama_model_info:
    name: registry.internal:5000/library/qwen2.5:7b
    insecure: true
    registry_username: puller
    registry_password: "{{ vault_registry_token }}"
"""

RETURN = r"""
model:
  description: The normalised model reference.
  returned: success
  type: str
  sample: registry.ollama.ai/library/qwen2.5:72b
name:
  description: The model as Ollama lists it.
  returned: success
  type: str
  sample: qwen2.5:72b
source:
  description: Where the model was read, V(registry) or V(store).
  returned: success
  type: str
  sample: registry
manifest_digest:
  description:
    - Digest of the manifest, as the registry serves it (C(Docker-Content-Digest)) or of the store's manifest file.
  returned: success
  type: str
  sample: sha256:424bad2cc13f...
manifest_path:
  description: The manifest file read, with O(path).
  returned: when O(path) is set
  type: str
size:
  description: Bytes of all the model's layers and its config (what a pull stores).
  returned: success
  type: int
  sample: 47415724544
config:
  description: The manifest's config blob.
  returned: success
  type: dict
  contains:
    media_type:
      description: Its media type.
      type: str
    digest:
      description: Its digest.
      type: str
    size:
      description: Its size in bytes.
      type: int
layers:
  description: Every layer of the manifest.
  returned: success
  type: list
  elements: dict
  contains:
    media_type:
      description: The layer's media type, e.g. C(application/vnd.ollama.image.model).
      type: str
    digest:
      description: Its digest.
      type: str
    size:
      description: Its size in bytes.
      type: int
model_digest:
  description: Digest of the model layer (the GGUF file) whose header was read.
  returned: success
  type: str
blob_size:
  description: Bytes of the model layer.
  returned: success
  type: int
bytes_read:
  description: Bytes of the model layer read to parse its header.
  returned: success
  type: int
  sample: 8388608
ranges_read:
  description: The byte ranges asked for, each C([offset, length]), in order.
  returned: success
  type: list
  elements: list
gguf_version:
  description: GGUF format version.
  returned: success
  type: int
  sample: 3
architecture:
  description: C(general.architecture), the model family llama.cpp runs it as.
  returned: success
  type: str
  sample: qwen2
model_name:
  description: C(general.name), where the file has one.
  returned: success
  type: str
parameter_count:
  description: Parameters, the element count of all tensors.
  returned: success
  type: int
  sample: 72706203648
tensor_count:
  description: Tensors in the file.
  returned: success
  type: int
file_type:
  description: C(general.file_type), the llama.cpp file type number (null when the file has none).
  returned: success
  type: int
  sample: 15
quantization:
  description:
    - The quantisation name of the file type, as Ollama shows it (C(Q4_K_M), C(Q8_0), C(F16)); without a
      file type, the ggml type holding most of the weights.
  returned: success
  type: str
  sample: Q4_K_M
block_count:
  description: Transformer layers.
  returned: success
  type: int
  sample: 80
head_count:
  description: Attention heads (the largest, where layers differ).
  returned: success
  type: int
  sample: 64
head_count_kv:
  description:
    - Key/value heads (the largest, where layers differ); equal to RV(head_count) without grouped-query attention.
  returned: success
  type: int
  sample: 8
head_count_kv_layers:
  description: Key/value heads of each layer, where the model gives them per layer.
  returned: when the model has per-layer head counts
  type: list
  elements: int
embedding_length:
  description: Embedding width.
  returned: success
  type: int
  sample: 8192
key_length:
  description: Width of one key head; embedding length / heads unless the model says otherwise.
  returned: success
  type: int
  sample: 128
value_length:
  description: Width of one value head; embedding length / heads unless the model says otherwise.
  returned: success
  type: int
  sample: 128
feed_forward_length:
  description: Width of the feed-forward block (the largest, where layers differ).
  returned: success
  type: int
  sample: 29568
context_length:
  description: Context length the model was trained for; Ollama caps C(num_ctx) at it.
  returned: success
  type: int
  sample: 32768
vocab_size:
  description: Tokens in the vocabulary.
  returned: success
  type: int
  sample: 152064
weights_bytes:
  description: Bytes of all tensors, what the runner holds in memory.
  returned: success
  type: int
ollama_weights_bytes:
  description:
    - The part of the weights Ollama 0.18.3 counts in C(ollama ps) for a model on its llama.cpp engine
      (the layers and the output; not the input token embeddings of a model with its own output projection).
  returned: success
  type: int
header_bytes:
  description: Bytes from the start of the file to the end of the tensor list.
  returned: success
  type: int
tensor_data_offset:
  description: Where the tensor data starts (the header aligned to RV(alignment)).
  returned: success
  type: int
alignment:
  description: C(general.alignment) of the tensor data, 32 by default.
  returned: success
  type: int
memory:
  description: Memory the model needs loaded on CPU for O(num_ctx), O(num_parallel) and O(kv_cache_type), in bytes.
  returned: success
  type: dict
  contains:
    num_ctx:
      description: The context per request sized for, O(num_ctx) capped at RV(context_length).
      type: int
    num_ctx_requested:
      description: O(num_ctx) as given.
      type: int
    num_parallel:
      description: O(num_parallel).
      type: int
    kv_cache_type:
      description: O(kv_cache_type).
      type: str
    weights_bytes:
      description: RV(weights_bytes); with no GPU Ollama reads all weights into memory (no mmap).
      type: int
    kv_cache_bytes_per_token:
      description:
        - KV cache of one token, over all layers - 2 x layers x KV heads x head width x bytes per element
          (f16 2, q8_0 1.0625, q4_0 0.5625) when keys and values are as wide as the heads.
      type: int
      sample: 327680
    kv_cache_bytes:
      description: RV(memory.kv_cache_bytes_per_token) x RV(memory.num_ctx) x RV(memory.num_parallel).
      type: int
    compute_buffer_bytes:
      description:
        - llama.cpp's compute buffer for a batch of 512 tokens and the logits buffer - the larger of
          4 x batch x (embedding + vocabulary) and 4 x batch x (3 x feed-forward + 2 x embedding) +
          6 x batch x context, plus 4 x vocabulary per sequence.
      type: int
    runtime_overhead_bytes:
      description:
        - The C(ollama serve) process and the runner outside llama.cpp's buffers - 80 MiB, plus 768 bytes per
          vocabulary token (both processes hold the vocabulary), plus ggml's work buffer of 2 x batch x the
          feed-forward width.
      type: int
    total_bytes:
      description: The sum of the four terms above, the memory to size a container limit from (before headroom).
      type: int
    ollama_ps_bytes:
      description:
        - What C(ollama ps) and C(/api/ps) will show for the loaded model, RV(ollama_weights_bytes) plus
          the KV cache. It leaves out the compute buffer, the input embeddings and the processes, so it is
          smaller than what the pod uses.
      type: int
error:
  description: Why it failed - C(kind); where known C(url) (no query), C(status), a C(body) excerpt, the subject.
  returned: failure
  type: dict
  sample: {kind: unreachable, url: "http://ollama.ollama.svc.cluster.local:11434/api/version"}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError, InputError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_info import (  # noqa: E402
    RangeRegistryClient,
    from_registry,
    from_store,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (  # noqa: E402
    REGISTRY_ARGS,
    REGISTRY_REQUIRED_TOGETHER,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.sizing import (  # noqa: E402
    KV_CACHE_TYPES,
    SizingError,
    memory_needed,
)

_FIX = {
    "not_found": "check the model name and tag",
    "unreachable": "check this host's network, DNS and proxy (https_proxy, no_proxy), or set insecure for "
    "a plain-HTTP registry",
    "timeout": "raise timeout, or check the network between this host and the registry",
    "auth": "set registry_username and registry_password",
    "not_gguf": "the model layer must be a GGUF file, as Ollama stores models",
}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["model"]),
            path=dict(type="path"),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            timeout=dict(type="float", default=60),
            num_ctx=dict(type="int", default=4096),
            num_parallel=dict(type="int", default=1),
            kv_cache_type=dict(type="str", choices=sorted(KV_CACHE_TYPES), default="f16"),
            **REGISTRY_ARGS,
        ),
        required_together=REGISTRY_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    try:
        info = describe(module.params)
    except CollectionError as err:
        fix = _FIX.get(err.kind)
        module.fail_json(msg=f"{err} ({fix})" if fix else str(err), changed=False, error=err.details())
    module.exit_json(changed=False, **info)


def describe(params):
    for option in ("num_ctx", "num_parallel"):
        if params[option] < 1:
            raise InputError(f"{option} must be at least 1, got {params[option]}")
    ref = ModelRef.parse(params["name"])
    if params["path"]:
        info = from_store(params["path"], ref)
    else:
        info = from_registry(RangeRegistryClient.from_params(ref.host, params), ref)
    try:
        info["memory"] = memory_needed(info, params["num_ctx"], params["num_parallel"], params["kv_cache_type"])
    except SizingError as err:
        raise SizingError(f"sizing {ref.short}: {err}") from err
    return info


if __name__ == "__main__":
    main()
