"""qwen2.5:72b as a registry serves it, without its 47 GB of weights: for the sizing of dev and prod.

`write_header` writes the GGUF header of Qwen2.5-72B-Instruct quantised Q4_K_M - its architecture
(config.json of the Hugging Face model), a vocabulary and merges of its sizes, and every tensor's
name, shape and type as llama.cpp's Q4_K_M rules choose them - and no tensor data. `publish` pushes
it to a real registry with a manifest whose model layer declares the size the whole file has, so
that ollama_model_info reads exactly the header a pull of the real model would start with and the
manifest sizes what seeding it would store. Only the weights are missing, which the preflight
never reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np

from tests.services.registry import CONFIG_MEDIA_TYPE, MANIFEST_V2, MODEL_MEDIA_TYPE, PublishedModel, Registry

EMBD, FF, HEADS, KV_HEADS, LAYERS, VOCAB, CTX, MERGES = 8192, 29568, 64, 8, 80, 152064, 32768, 151387
Q = gguf.GGMLQuantizationType


def _more_bits(i: int, n: int) -> bool:
    """llama.cpp's use_more_bits: Q4_K_M gives these layers' attn_v and ffn_down more bits."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _matrix_type(want: Q, row: int) -> Q:
    """K-quants need rows of 256 elements; llama.cpp falls back to Q5_0 for Q4_K and Q8_0 for Q6_K
    (Qwen2.5-72B's feed-forward width, 29568, is not a multiple of 256)."""
    if row % 256 == 0:
        return want
    return {Q.Q4_K: Q.Q5_0, Q.Q6_K: Q.Q8_0}[want]


def write_header(path: Path) -> int:
    """Write the header; return the size in bytes the complete file (header and tensors) has."""
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("Qwen2.5 72B Instruct")
    writer.add_context_length(CTX)
    writer.add_embedding_length(EMBD)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FF)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list([f"t{i:06d}" for i in range(VOCAB)])
    writer.add_token_types([1] * VOCAB)
    writer.add_token_merges([f"m{i:06d} x" for i in range(MERGES)])

    data = 0

    def add(name, rows, row, ggml_type):
        nonlocal data
        if ggml_type == Q.F32:  # norms and biases: one row
            nbytes = row * 4
            writer.add_tensor_info(name, (row,), np.dtype(np.float32), nbytes)
        else:
            ggml_type = _matrix_type(ggml_type, row)
            block, block_bytes = gguf.GGML_QUANT_SIZES[ggml_type]
            nbytes = rows * (row // block) * block_bytes
            # numpy's (rows, bytes per row): the gguf package derives the elements from the type
            writer.add_tensor_info(name, (rows, row // block * block_bytes), np.dtype(np.uint8), nbytes,
                                   raw_dtype=ggml_type)
        data += -(-nbytes // gguf.GGUF_DEFAULT_ALIGNMENT) * gguf.GGUF_DEFAULT_ALIGNMENT

    add("token_embd.weight", VOCAB, EMBD, Q.Q4_K)
    kv = KV_HEADS * EMBD // HEADS
    for i in range(LAYERS):
        more = _more_bits(i, LAYERS)
        add(f"blk.{i}.attn_norm.weight", 1, EMBD, Q.F32)
        add(f"blk.{i}.attn_q.weight", EMBD, EMBD, Q.Q4_K)
        add(f"blk.{i}.attn_q.bias", 1, EMBD, Q.F32)
        add(f"blk.{i}.attn_k.weight", kv, EMBD, Q.Q4_K)
        add(f"blk.{i}.attn_k.bias", 1, kv, Q.F32)
        add(f"blk.{i}.attn_v.weight", kv, EMBD, Q.Q6_K if more else Q.Q4_K)
        add(f"blk.{i}.attn_v.bias", 1, kv, Q.F32)
        add(f"blk.{i}.attn_output.weight", EMBD, EMBD, Q.Q4_K)
        add(f"blk.{i}.ffn_norm.weight", 1, EMBD, Q.F32)
        add(f"blk.{i}.ffn_gate.weight", FF, EMBD, Q.Q4_K)
        add(f"blk.{i}.ffn_up.weight", FF, EMBD, Q.Q4_K)
        add(f"blk.{i}.ffn_down.weight", EMBD, FF, Q.Q6_K if more else Q.Q4_K)
    add("output_norm.weight", 1, EMBD, Q.F32)
    add("output.weight", VOCAB, EMBD, Q.Q6_K)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header = path.stat().st_size
    offset = -(-header // gguf.GGUF_DEFAULT_ALIGNMENT) * gguf.GGUF_DEFAULT_ALIGNMENT
    return offset + data


def publish(registry: Registry, workdir: Path, name: str = "library/qwen2.5", tag: str = "72b") -> PublishedModel:
    """Push the header as the model layer of `name:tag`, its manifest declaring the whole file's size."""
    workdir.mkdir(parents=True, exist_ok=True)
    header = workdir / "qwen2.5-72b-header.gguf"
    full_size = write_header(header)
    layer = dict(mediaType=MODEL_MEDIA_TYPE, **registry.push_blob(name, header))
    layer["size"] = full_size
    config_path = workdir / "qwen2.5-72b-config.json"
    config_path.write_text(json.dumps({
        "model_format": "gguf", "model_family": "qwen2", "model_families": ["qwen2"], "model_type": "72.7B",
        "file_type": "Q4_K_M", "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }))
    config = dict(mediaType=CONFIG_MEDIA_TYPE, **registry.push_blob(name, config_path))
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_V2, "config": config, "layers": [layer]}
    digest = registry.push_manifest(name, tag, manifest)
    return PublishedModel(ref=f"{registry.host}/{name}:{tag}", manifest_digest=digest, manifest=manifest,
                          size=config["size"] + full_size)
