"""Deterministic llama-architecture GGUF models with random weights, made with the `gguf` package.

Random weights produce nonsense text, but loading and generating with them is real inference:
tokens, timings and memory behave as with a trained model of the same shape.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import gguf
import numpy as np

# A SentencePiece ("llama") vocabulary: specials, the 256 byte-fallback tokens, a few words.
_WORDS = ["▁", "▁the", "▁a", "▁model", "▁is", "▁ready", "▁hello", "▁world", "▁ollama", "▁ok",
          "e", "t", "a", "o", "i", "n", "s", "r", "h", "l", "d", "."]



def _finish(writer, tmp: Path, path: Path) -> Path:
    """Write out what the GGUFWriter holds and put the file in place: a reader never sees half a model."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path

def _vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    tokens += _WORDS
    types += [gguf.TokenType.NORMAL] * len(_WORDS)
    scores = [0.0] * 259 + [-float(i) for i in range(len(_WORDS))]
    return tokens, scores, [int(t) for t in types]


def add_llama_vocab(writer) -> int:
    """The llama tokenizer metadata every generated model carries (byte tokens included, which
    llama.cpp's tokenizer needs); returns the vocabulary size."""
    tokens, scores, types = _vocab()
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    return len(tokens)


def make_gguf(path: Path, seed: int = 0, size_mb: int = 0, n_layer: int = 2) -> Path:
    """Write a llama GGUF to path. size_mb=0 gives the tiny test model (~1 MB); a larger value adds
    layers of wider feed-forward blocks until the file is at least that many MiB."""
    n_vocab = len(_vocab()[0])
    n_embd, n_head, n_ff = (64, 4, 128) if not size_mb else (1024, 8, 4096)
    dtype = np.float32 if not size_mb else np.float16
    if size_mb:
        per_layer = (4 * n_embd * n_embd + 3 * n_embd * n_ff) * 2
        n_layer = max(1, -(-size_mb * (1 << 20) // per_layer))
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(dtype)

    path.parent.mkdir(parents=True, exist_ok=True)
    # written under another name and renamed, so a reader never sees a half-written model
    tmp = path.with_suffix(".partial")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(f"tiny-llama-seed{seed}" if not size_mb else f"bench-llama-{size_mb}mb-seed{seed}")
    writer.add_context_length(4096)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype is np.float32 else gguf.LlamaFileType.MOSTLY_F16)
    add_llama_vocab(writer)

    writer.add_tensor("token_embd.weight", weights(n_vocab, n_embd))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weights(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weights(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weights(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weights(n_embd, n_ff))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", weights(n_vocab, n_embd))
    return _finish(writer, tmp, path)


# wide layers, like real models: a narrow f16 model is compute-bound on CPU and sizes nothing real
N_EMBD, N_HEAD, N_HEAD_KV = 2048, 16, 4
Q = gguf.GGMLQuantizationType
# per file type: the type of most matrices, of the attention values, of the output projection
QUANT_TYPES = {"q4_k_m": (Q.Q4_K, Q.Q6_K, Q.Q6_K), "q8_0": (Q.Q8_0, Q.Q8_0, Q.Q8_0)}
FILE_TYPES = {"q4_k_m": gguf.LlamaFileType.MOSTLY_Q4_K_M, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}


def write_quantised_model(path: Path, seed: int, size_mb: int, quant: str = "q4_k_m", n_ff: int = 5632) -> Path:
    """A llama of about size_mb MiB, shaped like real models: 2048-wide layers with grouped-query
    attention (16 heads, 4 KV heads) and an n_ff-wide feed-forward block, layers added until the file
    has the size; the vocabulary is this module's, which Ollama tokenizes.

    q4_k_m: Q4_K blocks (attention values and the output Q6_K) of random bytes with small valid scales,
    written in seconds; q8_0: normal weights (sigma 0.02) quantised by the gguf package, slower to
    write but numbers like a trained model's. Either way the runner computes with real numbers. Run
    it in a child process (make_quantised_model): the writer holds every tensor until it writes."""
    matrix, value, output = QUANT_TYPES[quant]
    f32 = Q.F32
    rng = np.random.default_rng(seed)

    def encoded(rows: int, cols: int, ggml_type) -> np.ndarray:
        if ggml_type == Q.Q8_0:
            return gguf.quants.quantize(rng.standard_normal((rows, cols), dtype=np.float32) * 0.02, ggml_type)
        block, size = gguf.GGML_QUANT_SIZES[ggml_type]
        raw = np.frombuffer(rng.bytes(rows * cols // block * size), dtype=np.uint8).copy()
        raw = raw.reshape(rows, cols // block, size)
        # the f16 scales: small, so that activations stay finite; the rest (sub-block scales, quants)
        # is random. Q4_K starts with d and dmin, Q6_K ends with d.
        scale = np.frombuffer(np.float16(1e-4).tobytes(), dtype=np.uint8)
        if ggml_type == Q.Q4_K:
            raw[..., 0:2] = scale
            raw[..., 2:4] = scale
        else:
            raw[..., size - 2:size] = scale
        return raw.reshape(rows, cols // block * size)

    def nbytes(rows: int, cols: int, ggml_type) -> int:
        block, size = gguf.GGML_QUANT_SIZES[ggml_type]
        return rows * cols // block * size

    head_dim = N_EMBD // N_HEAD
    kv = N_HEAD_KV * head_dim
    per_layer = (2 * nbytes(N_EMBD, N_EMBD, matrix) + nbytes(kv, N_EMBD, matrix) + nbytes(kv, N_EMBD, value)
                 + 3 * nbytes(n_ff, N_EMBD, matrix))
    n_layer = max(1, -(-size_mb * (1 << 20) // per_layer))

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(f"wide-{quant}-{size_mb}mb-seed{seed}")
    writer.add_context_length(4096)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(FILE_TYPES[quant])
    n_vocab = add_llama_vocab(writer)

    def add(name: str, rows: int, cols: int, ggml_type) -> None:
        writer.add_tensor(name, encoded(rows, cols, ggml_type), raw_dtype=ggml_type)

    add("token_embd.weight", n_vocab, N_EMBD, matrix)
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32), raw_dtype=f32)
        add(f"blk.{i}.attn_q.weight", N_EMBD, N_EMBD, matrix)
        add(f"blk.{i}.attn_k.weight", kv, N_EMBD, matrix)
        add(f"blk.{i}.attn_v.weight", kv, N_EMBD, value)
        add(f"blk.{i}.attn_output.weight", N_EMBD, N_EMBD, matrix)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32), raw_dtype=f32)
        add(f"blk.{i}.ffn_gate.weight", n_ff, N_EMBD, matrix)
        add(f"blk.{i}.ffn_up.weight", n_ff, N_EMBD, matrix)
        add(f"blk.{i}.ffn_down.weight", N_EMBD, n_ff, matrix)
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32), raw_dtype=f32)
    add("output.weight", n_vocab, N_EMBD, output)
    return _finish(writer, tmp, path)


def make_quantised_model(path: Path, seed: int, size_mb: int, quant: str = "q4_k_m", n_ff: int = 5632) -> float:
    """Write the model in a child process, so the caller never holds the weights; seconds it took."""
    code = (
        f"from pathlib import Path; from tests.services.models import write_quantised_model; "
        f"write_quantised_model(Path({str(path)!r}), seed={seed}, size_mb={size_mb}, quant={quant!r}, n_ff={n_ff})"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=True)
    return time.monotonic() - started
