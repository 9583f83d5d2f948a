"""Deterministic llama-architecture GGUF models with random weights, made with the `gguf` package.

Random weights produce nonsense text, but loading and generating with them is real inference:
tokens, timings and memory behave as with a trained model of the same shape.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

# A SentencePiece ("llama") vocabulary: specials, the 256 byte-fallback tokens, a few words.
_WORDS = ["▁", "▁the", "▁a", "▁model", "▁is", "▁ready", "▁hello", "▁world", "▁ollama", "▁ok",
          "e", "t", "a", "o", "i", "n", "s", "r", "h", "l", "d", "."]


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

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path
