# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The memory a model needs loaded on CPU, term by term: the sizing every role and ollama_model_info share."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.sizing import SizingError, memory_needed

DOCUMENTATION = r"""
name: model_memory
short_description: The memory a model needs loaded on CPU by Ollama, from its GGUF facts
version_added: 1.2.0
author: AI Platform team
description:
  - Weights, KV cache, compute buffer and runtime overhead of a model loaded by Ollama 0.18.3 on its
    llama.cpp engine without a GPU, and their total, for a context, a number of parallel requests and
    a KV cache type.
  - The input is what M(aiplatform.ollama.ollama_model_info) returns (its registered result, or any
    dict with the fields it uses), so one read of the model's header sizes any number of settings.
  - The KV cache is 2 x layers x KV heads x head width x bytes per element (f16 2, q8_0 1.0625,
    q4_0 0.5625) per token of context, per parallel request. The compute buffer is llama.cpp's for a
    batch of 512 tokens (the larger of the output projection and a feed-forward block with the
    attention mask), the runtime overhead the two Ollama processes outside those buffers (80 MiB,
    768 bytes per vocabulary token, and ggml's work buffer of 2 x batch x the feed-forward width).
positional: _input
options:
  _input:
    description:
      - The model facts, the result of M(aiplatform.ollama.ollama_model_info). Used are C(weights_bytes),
        C(block_count), C(head_count_kv) (or C(head_count_kv_layers)), C(key_length), C(value_length),
        C(embedding_length), C(feed_forward_length), C(vocab_size), C(context_length) and
        C(ollama_weights_bytes).
    type: dict
    required: true
  num_ctx:
    description: Context length per request; capped at the model's C(context_length), as Ollama caps it.
    type: int
    default: 4096
  num_parallel:
    description: Requests served at once (C(OLLAMA_NUM_PARALLEL)), each with its own context.
    type: int
    default: 1
  kv_cache_type:
    description: The KV cache's element type (C(OLLAMA_KV_CACHE_TYPE)).
    type: str
    choices: [f16, q8_0, q4_0]
    default: f16
"""

EXAMPLES = r"""
- name: Read the model's header once
  aiplatform.ollama.ollama_model_info:
    name: qwen2.5:72b
  register: qwen

- name: Memory for 4 parallel requests of 8k context with a q8_0 KV cache
  ansible.builtin.debug:
    msg: "{{ (qwen | aiplatform.ollama.model_memory(num_ctx=8192, num_parallel=4, kv_cache_type='q8_0')).total_bytes }}"

- name: Fail when the pod's memory limit cannot hold it
  ansible.builtin.assert:
    that: (qwen | aiplatform.ollama.model_memory(num_ctx=4096)).total_bytes
          <= (ollama_memory_limit | aiplatform.ollama.k8s_quantity_bytes)
"""

RETURN = r"""
_value:
  description: The terms, in bytes.
  type: dict
  contains:
    num_ctx:
      description: The context sized for (the request capped at the model's).
      type: int
    num_ctx_requested:
      description: The context asked for.
      type: int
    num_parallel:
      description: Parallel requests.
      type: int
    kv_cache_type:
      description: KV cache element type.
      type: str
    weights_bytes:
      description: All tensors of the model.
      type: int
    kv_cache_bytes_per_token:
      description: KV cache of one token over all layers.
      type: int
    kv_cache_bytes:
      description: KV cache for the context and parallel requests.
      type: int
    compute_buffer_bytes:
      description: llama.cpp's compute and logits buffers.
      type: int
    runtime_overhead_bytes:
      description: The Ollama server and runner processes outside those buffers.
      type: int
    total_bytes:
      description: The sum of weights, KV cache, compute buffer and runtime overhead.
      type: int
    ollama_ps_bytes:
      description: What C(ollama ps) will show for the loaded model (its own, smaller estimate).
      type: int
"""


def model_memory(info, num_ctx=4096, num_parallel=1, kv_cache_type="f16"):
    if not isinstance(info, dict):
        raise AnsibleFilterError(
            "model_memory: the input must be the result of aiplatform.ollama.ollama_model_info, "
            f"got {type(info).__name__}"
        )
    try:
        return memory_needed(info, num_ctx, num_parallel, kv_cache_type)
    except SizingError as exc:
        raise AnsibleFilterError(f"model_memory: {exc}") from exc


class FilterModule:
    """Model memory sizing filter."""

    def filters(self):
        return {"model_memory": model_memory}
