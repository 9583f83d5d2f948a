"""GGUF files of shapes make_gguf does not write, made with the `gguf` package for the header tests.

`make_sample` writes a llama model whose vocabulary, widths, head counts (one per layer if asked),
tensor types (quantised blocks written raw) and byte order are chosen by the test, plus one metadata
key of every value type. What it wrote is returned, so a test compares a parser against the writer's
own record rather than against numbers copied into the test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np

# one metadata key per GGUF value type, arrays of every element type included
EVERY_TYPE = {
    "test.uint8": (7, gguf.GGUFValueType.UINT8, None),
    "test.int8": (-7, gguf.GGUFValueType.INT8, None),
    "test.uint16": (65000, gguf.GGUFValueType.UINT16, None),
    "test.int16": (-32000, gguf.GGUFValueType.INT16, None),
    "test.uint32": (4_000_000_000, gguf.GGUFValueType.UINT32, None),
    "test.int32": (-2_000_000_000, gguf.GGUFValueType.INT32, None),
    "test.float32": (0.5, gguf.GGUFValueType.FLOAT32, None),
    "test.bool": (True, gguf.GGUFValueType.BOOL, None),
    "test.string": ("héllo ✓", gguf.GGUFValueType.STRING, None),
    "test.uint64": (2**63 + 5, gguf.GGUFValueType.UINT64, None),
    "test.int64": (-(2**62), gguf.GGUFValueType.INT64, None),
    "test.float64": (0.125, gguf.GGUFValueType.FLOAT64, None),
    "test.array_uint8": ([1, 2, 255], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT8),
    "test.array_int16": ([-1, 2, -3], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT16),
    "test.array_uint32": ([1, 2, 3], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32),
    "test.array_int64": ([-(2**40), 0], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT64),
    "test.array_float32": ([0.25, -1.5], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.FLOAT32),
    "test.array_float64": ([0.5, 2.0], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.FLOAT64),
    "test.array_bool": ([True, False, True], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.BOOL),
    "test.array_string": (["a", "", "ü"], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING),
}


@dataclass
class Sample:
    """What make_sample wrote."""

    path: Path
    n_vocab: int
    n_embd: int
    n_head: int
    n_head_kv: int | list[int]
    n_ff: int
    n_layer: int
    n_ctx: int
    file_type: int
    alignment: int
    tensors: dict = field(default_factory=dict)  # name -> (shape as GGUF lists it, ggml type id)

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(shape)) for shape, _type in self.tensors.values())


def make_sample(path: Path, n_vocab: int = 300, n_embd: int = 64, n_head: int = 4, n_head_kv=4, n_ff: int = 128,
                n_layer: int = 2, n_ctx: int = 2048, quantized: bool = False, big_endian: bool = False,
                alignment: int | None = None, every_type: bool = False, tied_output: bool = False) -> Sample:
    """Write a llama GGUF. `n_head_kv` may be a list (one count per layer). `quantized` writes the
    layers' matrices as Q4_K and Q6_K blocks (raw bytes: the header is what is tested, not the numbers)
    with file type Q4_K_M. The embeddings are zeros, so that a large vocabulary costs no time."""
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama", endianess=endian)
    file_type = gguf.LlamaFileType.MOSTLY_Q4_K_M if quantized else gguf.LlamaFileType.MOSTLY_F16
    sample = Sample(path, n_vocab, n_embd, n_head, n_head_kv, n_ff, n_layer, n_ctx, int(file_type),
                    alignment or gguf.GGUF_DEFAULT_ALIGNMENT)
    writer.add_name(f"sample-{n_vocab}v-{n_embd}e")
    if alignment:
        writer.add_custom_alignment(alignment)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    if isinstance(n_head_kv, list):
        writer.add_key_value("llama.attention.head_count_kv", n_head_kv, gguf.GGUFValueType.ARRAY,
                             sub_type=gguf.GGUFValueType.UINT32)
    else:
        writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(file_type)
    writer.add_tokenizer_model("llama")
    # tokens of a realistic length (a real vocabulary averages 6-10 bytes a token)
    writer.add_token_list([f"<tok{i:06d}>" for i in range(n_vocab)])
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_token_types([1] * n_vocab)
    if every_type:
        for key, (value, vtype, sub_type) in EVERY_TYPE.items():
            writer.add_key_value(key, value, vtype, sub_type=sub_type)

    def add(name, shape, ggml_type=gguf.GGMLQuantizationType.F16):
        # `shape` is numpy's (rows, columns); GGUF lists the dimensions the other way round
        sample.tensors[name] = (list(reversed(shape)), int(ggml_type))
        if ggml_type in (gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32):
            dtype = np.float16 if ggml_type == gguf.GGMLQuantizationType.F16 else np.float32
            writer.add_tensor(name, np.zeros(shape, dtype=dtype))
            return
        block, size = gguf.GGML_QUANT_SIZES[ggml_type]
        raw = np.zeros((shape[0], shape[1] // block * size), dtype=np.uint8)
        writer.add_tensor(name, raw, raw_dtype=ggml_type)  # the element shape follows from the bytes

    head_dim = n_embd // n_head
    kv_heads = n_head_kv if isinstance(n_head_kv, list) else [n_head_kv] * n_layer
    matrix = gguf.GGMLQuantizationType.Q4_K if quantized else gguf.GGMLQuantizationType.F16
    add("token_embd.weight", (n_vocab, n_embd))
    for i in range(n_layer):
        add(f"blk.{i}.attn_norm.weight", (n_embd,), gguf.GGMLQuantizationType.F32)
        add(f"blk.{i}.attn_q.weight", (n_embd, n_embd), matrix)
        add(f"blk.{i}.attn_k.weight", (kv_heads[i] * head_dim, n_embd), matrix)
        add(f"blk.{i}.attn_v.weight", (kv_heads[i] * head_dim, n_embd),
            gguf.GGMLQuantizationType.Q6_K if quantized else matrix)
        add(f"blk.{i}.attn_output.weight", (n_embd, n_embd), matrix)
        add(f"blk.{i}.ffn_norm.weight", (n_embd,), gguf.GGMLQuantizationType.F32)
        add(f"blk.{i}.ffn_gate.weight", (n_ff, n_embd), matrix)
        add(f"blk.{i}.ffn_up.weight", (n_ff, n_embd), matrix)
        add(f"blk.{i}.ffn_down.weight", (n_embd, n_ff), matrix)
    add("output_norm.weight", (n_embd,), gguf.GGMLQuantizationType.F32)
    if not tied_output:
        add("output.weight", (n_vocab, n_embd))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sample
