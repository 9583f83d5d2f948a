"""Sizing by hand: every expected figure below is worked out in the comment beside it."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.model_memory import FilterModule, model_memory
from ansible_collections.aiplatform.ollama.plugins.module_utils.sizing import (
    SizingError,
    compute_buffer_bytes,
    decode_tokens_per_s,
    kv_bytes_per_token,
    memory_needed,
    storage_needed,
)

KiB, MiB, GiB = 1024, 1024**2, 1024**3

# Qwen2.5-72B as its GGUF header describes it (qwen2.5:72b, Q4_K_M, ~47.4 GB of weights)
QWEN_72B = {
    "architecture": "qwen2", "block_count": 80, "head_count": 64, "head_count_kv": 8, "embedding_length": 8192,
    "key_length": 128, "value_length": 128, "feed_forward_length": 29568, "vocab_size": 152064,
    "context_length": 32768, "weights_bytes": 47_400_000_000, "ollama_weights_bytes": 46_100_000_000,
}
# make_gguf's tiny model: 2 layers, 4 heads of 16, embedding 64, feed-forward 128, 281 tokens, F32
TINY = {
    "block_count": 2, "head_count": 4, "head_count_kv": 4, "embedding_length": 64, "key_length": 16,
    "value_length": 16, "feed_forward_length": 128, "vocab_size": 281, "context_length": 4096,
    "weights_bytes": 472_832, "ollama_weights_bytes": 400_896,
}


def test_qwen_72b_f16_kv_cache_is_320_kib_per_token():
    # 2 (K and V) x 80 layers x 8 KV heads x 128 x 2 bytes = 327680 = 320 KiB
    assert kv_bytes_per_token(QWEN_72B) == 2 * 80 * 8 * 128 * 2 == 320 * KiB
    memory = memory_needed(QWEN_72B, num_ctx=4096)
    assert memory["kv_cache_bytes"] == 320 * KiB * 4096 == int(1.25 * GiB)
    assert memory_needed(QWEN_72B, num_ctx=32768)["kv_cache_bytes"] == 10 * GiB
    # each parallel request has its own context
    assert memory_needed(QWEN_72B, num_ctx=4096, num_parallel=4)["kv_cache_bytes"] == 5 * GiB


@pytest.mark.parametrize("kv_type,per_token", [
    ("f16", 327_680),
    # 80 x 8 x 256 = 163840 elements; q8_0 keeps 32 of them in 34 bytes: 163840 / 32 x 34 = 174080
    ("q8_0", 174_080),
    # q4_0: 32 elements in 18 bytes: 163840 / 32 x 18 = 92160
    ("q4_0", 92_160),
])
def test_kv_cache_types(kv_type, per_token):
    assert kv_bytes_per_token(QWEN_72B, kv_type) == per_token
    assert per_token / 163_840 == {"f16": 2, "q8_0": 1.0625, "q4_0": 0.5625}[kv_type]


def test_qwen_72b_all_terms_at_4k():
    memory = memory_needed(QWEN_72B, num_ctx=4096)
    # output projection: 4 x 512 x (8192 + 152064) = 328204288
    # feed-forward with the mask: 4 x 512 x (3 x 29568 + 2 x 8192) + 6 x 512 x 4096 = 215220224 + 12582912
    # the larger, plus logits 4 x 152064 = 608256
    assert memory["compute_buffer_bytes"] == 328_204_288 + 608_256
    # 80 MiB + 768 x 152064 + 2 x 512 x 29568
    assert memory["runtime_overhead_bytes"] == 83_886_080 + 116_785_152 + 30_277_632
    assert memory["total_bytes"] == 47_400_000_000 + 1_342_177_280 + 328_812_544 + 230_948_864
    assert memory["total_bytes"] == 49_301_938_688  # 45.9 GiB
    assert memory["ollama_ps_bytes"] == 46_100_000_000 + 1_342_177_280
    assert (memory["num_ctx"], memory["num_parallel"], memory["kv_cache_type"]) == (4096, 1, "f16")


def test_tiny_model_terms():
    memory = memory_needed(TINY, num_ctx=4096)
    # 2 layers x 4 KV heads x (16 + 16) x 2 bytes = 512 bytes a token; x 4096 = 2 MiB (llama.cpp logs 2.00 MiB)
    assert memory["kv_cache_bytes_per_token"] == 512 and memory["kv_cache_bytes"] == 2 * MiB
    # output 4 x 512 x (64 + 281) = 706560 < feed-forward 4 x 512 x (384 + 128) + 6 x 512 x 4096 = 13631488
    assert memory["compute_buffer_bytes"] == 13_631_488 + 4 * 281
    # 80 MiB + 768 x 281 + 2 x 512 x 128
    assert memory["runtime_overhead_bytes"] == 80 * MiB + 215_808 + 131_072
    assert memory["total_bytes"] == 472_832 + 2 * MiB + 13_632_612 + 80 * MiB + 215_808 + 131_072
    assert memory["ollama_ps_bytes"] == 400_896 + 2 * MiB  # 2498048: what /api/ps showed for it


def test_context_is_capped_at_the_trained_length():
    memory = memory_needed(TINY, num_ctx=8192)
    assert (memory["num_ctx"], memory["num_ctx_requested"]) == (4096, 8192)
    assert memory["kv_cache_bytes"] == 512 * 4096
    without = dict(TINY, context_length=None)
    assert memory_needed(without, num_ctx=8192)["num_ctx"] == 8192


def test_a_context_smaller_than_the_batch_shrinks_the_batch():
    # batch = min(512, 256) = 256: 4 x 256 x (384 + 128) + 6 x 256 x 256 = 524288 + 393216
    assert compute_buffer_bytes(TINY, 256) == 524_288 + 393_216 + 4 * 281


def test_per_layer_kv_heads():
    info = dict(TINY, block_count=3, head_count_kv=4, head_count_kv_layers=[4, 2, 1])
    # (4 + 2 + 1) heads x (16 + 16) x 2 bytes
    assert kv_bytes_per_token(info) == 7 * 32 * 2


def test_storage_counts_the_largest_model_twice():
    # a pull stores the new blobs before the old ones go: 10 + 30 + 20 stored, 30 more in flight
    assert storage_needed([10, 30, 20]) == {"models_bytes": 60, "in_flight_bytes": 30, "total_bytes": 90}
    assert storage_needed({"a": 5}) == {"models_bytes": 5, "in_flight_bytes": 5, "total_bytes": 10}
    assert storage_needed([]) == {"models_bytes": 0, "in_flight_bytes": 0, "total_bytes": 0}


def test_decode_speed_is_bandwidth_bound():
    # 8-channel DDR4-3200: 8 x 25.6 GB/s = 204.8 GB/s over 47.4 GB a token, at 55 % and 75 % of the roofline
    assert decode_tokens_per_s(204.8e9, 47.4e9, 0.55) == pytest.approx(2.376, abs=1e-3)
    assert decode_tokens_per_s(204.8e9, 47.4e9, 0.75) == pytest.approx(3.241, abs=1e-3)
    assert decode_tokens_per_s(100e9, 50e9) == pytest.approx(1.3)  # default efficiency 0.65


@pytest.mark.parametrize("args,match", [
    ((0, 1e9, 0.5), "must be positive"),
    ((1e9, -1, 0.5), "must be positive"),
    ((1e9, 1e9, 0), r"efficiency must be in \(0, 1\]"),
    ((1e9, 1e9, 1.5), r"efficiency must be in \(0, 1\]"),
    (("fast", 1e9, 0.5), "needs numbers"),
])
def test_decode_refuses_bad_input(args, match):
    with pytest.raises(SizingError, match=match):
        decode_tokens_per_s(*args)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_ctx": 0}, "num_ctx must be at least 1"),
    ({"num_ctx": "lots"}, "num_ctx must be a whole number"),
    ({"num_parallel": 0}, "num_parallel must be at least 1"),
    ({"kv_cache_type": "q5_1"}, "kv_cache_type 'q5_1' is not one Ollama accepts: f16, q4_0, q8_0"),
])
def test_memory_refuses_bad_settings(kwargs, match):
    with pytest.raises(SizingError, match=match):
        memory_needed(TINY, **kwargs)


def test_memory_names_a_missing_field():
    info = dict(TINY)
    del info["vocab_size"]
    with pytest.raises(SizingError, match="no vocab_size: pass the result of aiplatform.ollama.ollama_model_info"):
        memory_needed(info)


def test_filter_is_the_same_sizing():
    assert FilterModule().filters()["model_memory"] is model_memory
    assert model_memory(QWEN_72B, num_ctx=8192, num_parallel=2, kv_cache_type="q8_0") == memory_needed(
        QWEN_72B, 8192, 2, "q8_0")
    # what Jinja passes from a registered result: strings of numbers work as numbers do
    assert model_memory(dict(TINY, block_count="2"), num_ctx="4096")["kv_cache_bytes"] == 2 * MiB


@pytest.mark.parametrize("value,kwargs,match", [
    ("qwen2.5:72b", {}, "the input must be the result of aiplatform.ollama.ollama_model_info, got str"),
    (TINY, {"kv_cache_type": "f32"}, "model_memory: kv_cache_type 'f32'"),
    ({"block_count": 2}, {}, "model_memory: the model facts have no"),
])
def test_filter_errors_name_the_problem(value, kwargs, match):
    with pytest.raises(AnsibleFilterError, match=match):
        model_memory(value, **kwargs)
