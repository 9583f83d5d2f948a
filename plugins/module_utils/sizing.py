# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Memory, storage and decode speed of a model on CPU, from the facts of its GGUF header.

The memory terms are those of Ollama 0.18.3 running a model on its llama.cpp engine (llama, qwen2,
mistral and most dense transformers) without a GPU:

weights
    Every tensor of the file. With no GPU Ollama turns mmap off, so the runner reads the weights into
    anonymous memory, all of them, the input token embeddings included.
KV cache
    Per token: for each layer, KV heads x (key length + value length) x bytes per element, the
    element being f16 (2 bytes), q8_0 (34 bytes per 32) or q4_0 (18 bytes per 32); times the
    context and the parallel sequences (OLLAMA_NUM_PARALLEL), each of which gets its own context.
compute buffer
    llama.cpp's graph scratch memory, reserved once for a full batch (512 tokens, less when the
    context is smaller). The largest of: the output projection, 4 x batch x (embedding + vocabulary)
    bytes (the figure Ollama's own llama estimate uses, fs/ggml GraphSize); and a feed-forward block,
    4 x batch x (3 x feed-forward + 2 x embedding), while the attention mask of the context lives,
    6 x batch x context (f32 and its f16 copy; on CPU llama.cpp resolves flash attention "auto" to
    on, so no full attention-score matrix is kept, which Ollama's llama formula assumes). Plus the
    logits buffer, 4 x vocabulary per sequence. Checked against the buffer sizes llama.cpp logs for
    generated llama models (embedding 64-1024, feed-forward 128-4096, vocabulary 281-152000, context
    1024-4096): from 2 % under to 8 % over, except models of a single layer (up to 55 % over: their
    feed-forward block is the last one, after which the mask is no longer needed).
runtime overhead
    The `ollama serve` process and the runner outside llama.cpp's buffers: about 38 MiB resident
    each for 0.18.3 on linux/amd64 (80 MiB together); the vocabulary, which both hold (the server
    loads it to tokenize, the runner to run), about 768 bytes per token together; and ggml's CPU
    work buffer, where a batch's activations are converted to the weights' dot-product type before
    a matrix multiplication, 2 x batch x the widest row (feed-forward). Ollama itself budgets
    nothing for these on a CPU.

`ollama_ps_bytes` is what `ollama ps` and /api/ps show for such a load: Ollama's own estimate, the
weights it counts (repeating layers and output, see gguf_header) plus the KV cache. It leaves out
the compute buffer, the input embeddings and the processes, so it is smaller than what the pod
uses: size a memory limit from `total_bytes`.

A page that is never written is not resident: a runner that never fills its context or a full
batch uses less than `total_bytes`, which is what it can reach. Ollama asks for the logits of a
batch's last token only, so most of an output projection sized for a large vocabulary stays
untouched. Reading the model file also fills the page cache, which a container's memory limit
counts until the kernel reclaims it.
"""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError

MIB = 1024 * 1024

# bytes per element as (numerator, denominator): ggml's q8_0 and q4_0 blocks hold 32 elements in 34
# and 18 bytes. Ollama accepts only these three for OLLAMA_KV_CACHE_TYPE.
KV_CACHE_TYPES = {"f16": (2, 1), "q8_0": (34, 32), "q4_0": (18, 32)}
DEFAULT_NUM_CTX = 4096  # Ollama 0.18.3's default context where no GPU has 23 GiB or more
DEFAULT_NUM_BATCH = 512  # Ollama's num_batch default, llama.cpp's n_ubatch
RUNTIME_BASE_BYTES = 80 * MIB
RUNTIME_BYTES_PER_TOKEN = 768
# the middle of the 55-75 % of the memory-bandwidth roofline that published CPU runs reach
DEFAULT_DECODE_EFFICIENCY = 0.65


class SizingError(InputError):
    """Input sizing cannot use; the message names the field or argument."""


def _count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            value = int(float(value))
        except (TypeError, ValueError):
            raise SizingError(f"{name} must be a whole number, got {value!r}") from None
    if value < minimum:
        raise SizingError(f"{name} must be at least {minimum}, got {value}")
    return value


def _field(info, name, required=True):
    value = info.get(name) if isinstance(info, dict) else None
    if value is None:
        if required:
            raise SizingError(
                f"the model facts have no {name}: pass the result of aiplatform.ollama.ollama_model_info "
                "(or a dict with the fields it returns)"
            )
        return None
    return _count(f"model field {name}", value, minimum=0)


def kv_bytes_per_token(info, kv_cache_type="f16"):
    """Bytes of KV cache one token of context takes over all layers."""
    if kv_cache_type not in KV_CACHE_TYPES:
        raise SizingError(
            f"kv_cache_type {kv_cache_type!r} is not one Ollama accepts: {', '.join(sorted(KV_CACHE_TYPES))}"
        )
    numerator, denominator = KV_CACHE_TYPES[kv_cache_type]
    layers = _field(info, "block_count")
    per_layer = info.get("head_count_kv_layers")
    if per_layer:
        kv_heads = sum(_count("head_count_kv_layers[]", h, minimum=0) for h in per_layer[:layers])
    else:
        kv_heads = layers * _field(info, "head_count_kv")
    elements = kv_heads * (_field(info, "key_length") + _field(info, "value_length"))
    return elements * numerator // denominator


def effective_num_ctx(info, num_ctx):
    """The context Ollama gives the model: the request, capped at the context it was trained for."""
    num_ctx = _count("num_ctx", num_ctx)
    trained = _field(info, "context_length", required=False)
    return min(num_ctx, trained) if trained else num_ctx


def compute_buffer_bytes(info, num_ctx, num_parallel=1, num_batch=DEFAULT_NUM_BATCH):
    """llama.cpp's CPU compute buffer plus the logits buffer (see the module docstring)."""
    batch = min(_count("num_batch", num_batch), num_ctx)
    embedding = _field(info, "embedding_length")
    vocab = _field(info, "vocab_size")
    feed_forward = _field(info, "feed_forward_length", required=False) or 4 * embedding
    output = 4 * batch * (embedding + vocab)
    layer = 4 * batch * (3 * feed_forward + 2 * embedding) + 6 * batch * num_ctx
    return max(output, layer) + 4 * vocab * num_parallel


def runtime_overhead_bytes(info, num_ctx=DEFAULT_NUM_CTX, num_batch=DEFAULT_NUM_BATCH):
    """The two processes outside llama.cpp's buffers (see the module docstring)."""
    batch = min(_count("num_batch", num_batch), num_ctx)
    vocab = _field(info, "vocab_size")
    embedding = _field(info, "embedding_length")
    widest = max(_field(info, "feed_forward_length", required=False) or 4 * embedding, embedding)
    return RUNTIME_BASE_BYTES + RUNTIME_BYTES_PER_TOKEN * vocab + 2 * batch * widest


def memory_needed(info, num_ctx=DEFAULT_NUM_CTX, num_parallel=1, kv_cache_type="f16"):
    """Each term of the memory a model takes loaded on CPU, and their total, in bytes."""
    num_parallel = _count("num_parallel", num_parallel)
    ctx = effective_num_ctx(info, num_ctx)
    weights = _field(info, "weights_bytes")
    per_token = kv_bytes_per_token(info, kv_cache_type)
    kv_cache = per_token * ctx * num_parallel
    compute = compute_buffer_bytes(info, ctx, num_parallel)
    runtime = runtime_overhead_bytes(info, ctx)
    ollama_weights = _field(info, "ollama_weights_bytes", required=False)
    return {
        "num_ctx": ctx,
        "num_ctx_requested": _count("num_ctx", num_ctx),
        "num_parallel": num_parallel,
        "kv_cache_type": kv_cache_type,
        "weights_bytes": weights,
        "kv_cache_bytes_per_token": per_token,
        "kv_cache_bytes": kv_cache,
        "compute_buffer_bytes": compute,
        "runtime_overhead_bytes": runtime,
        "total_bytes": weights + kv_cache + compute + runtime,
        "ollama_ps_bytes": (ollama_weights if ollama_weights is not None else weights) + kv_cache,
    }


def storage_needed(model_sizes):
    """Bytes a model store needs for these models (their manifest sizes) while one of them is being
    downloaded again beside itself: a pull writes the new blobs before the old ones are removed, so
    the largest model counts twice."""
    if isinstance(model_sizes, dict):
        model_sizes = list(model_sizes.values())
    if not isinstance(model_sizes, (list, tuple)):
        raise SizingError(f"model sizes must be a list of byte counts, got {model_sizes!r}")
    sizes = [_count("model size", size, minimum=0) for size in model_sizes]
    models = sum(sizes)
    in_flight = max(sizes) if sizes else 0
    return {"models_bytes": models, "in_flight_bytes": in_flight, "total_bytes": models + in_flight}


def decode_tokens_per_s(bandwidth_bytes_per_s, bytes_per_token, efficiency=DEFAULT_DECODE_EFFICIENCY):
    """Expected decode speed: every generated token reads the weights (about the model's size) once,
    so memory bandwidth bounds it; `efficiency` is the share of that roofline reached."""
    try:
        bandwidth = float(bandwidth_bytes_per_s)
        per_token = float(bytes_per_token)
        share = float(efficiency)
    except (TypeError, ValueError):
        raise SizingError(
            "decode_tokens_per_s needs numbers: bandwidth in bytes/s, bytes per token, efficiency 0-1"
        ) from None
    if bandwidth <= 0 or per_token <= 0:
        raise SizingError(
            f"bandwidth ({bandwidth_bytes_per_s!r}) and bytes per token ({bytes_per_token!r}) must be positive"
        )
    if not 0 < share <= 1:
        raise SizingError(f"efficiency must be in (0, 1], got {efficiency!r}")
    return bandwidth * share / per_token
