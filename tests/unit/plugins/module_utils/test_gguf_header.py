"""The GGUF header parser against files the `gguf` package wrote: every field compared with what the
writer was given and with gguf's own reader, read through a range reader that records each read."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.gguf_header import (
    FILE_TYPES,
    GGML_TYPES,
    INITIAL_RANGE,
    GGUFArray,
    GGUFError,
    model_facts,
    read_header,
)
from tests.services.gguf_samples import EVERY_TYPE, make_sample
from tests.services.models import make_gguf


class RangeFile:
    """read(offset, length) over a file, recording every range asked for and never reading past it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self.reads: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    @property
    def furthest(self) -> int:
        return max(offset + length for offset, length in self.reads)


def parse(path, **kwargs):
    reader = RangeFile(getattr(path, "path", path))  # a Sample or a path
    header = read_header(reader, size=kwargs.pop("size", reader.size), **kwargs)
    return header, model_facts(header, reader.size), reader


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    return {
        "tiny": make_gguf(root / "tiny.gguf", seed=3),
        # 120k tokens of ~11 bytes: a header of ~2.9 MB, far past the first 256 KiB range
        "vocab": make_sample(root / "vocab.gguf", n_vocab=120_000, n_embd=16, n_head=2, n_head_kv=2, n_ff=32),
        "quantized": make_sample(root / "q4km.gguf", quantized=True, n_embd=256, n_head=4, n_head_kv=2, n_ff=512),
        "per_layer": make_sample(root / "per-layer.gguf", n_head_kv=[4, 2, 1], n_layer=3, alignment=64,
                                 tied_output=True),
        "big_endian": make_sample(root / "be.gguf", big_endian=True, every_type=True),
        "every_type": make_sample(root / "types.gguf", every_type=True),
    }


def test_tiny_model_fields_match_what_make_gguf_wrote(samples):
    header, facts, reader = parse(samples["tiny"])
    written = gguf.GGUFReader(str(samples["tiny"]))
    assert facts["architecture"] == "llama" and facts["gguf_version"] == 3
    # make_gguf's tiny model: embedding 64, 4 heads, 2 layers, feed-forward 128, context 4096, F32
    shape = (facts["embedding_length"], facts["head_count"], facts["head_count_kv"], facts["block_count"])
    assert shape == (64, 4, 4, 2)
    assert (facts["feed_forward_length"], facts["context_length"]) == (128, 4096)
    assert (facts["key_length"], facts["value_length"]) == (16, 16)  # embedding / heads
    assert facts["file_type"] == int(gguf.LlamaFileType.ALL_F32) and facts["quantization"] == "F32"
    tokens = written.get_field("tokenizer.ggml.tokens")
    assert facts["vocab_size"] == len(tokens.data) == 281
    assert facts["model_name"] == "tiny-llama-seed3"
    assert facts["tensor_count"] == len(written.tensors)
    assert facts["parameter_count"] == sum(int(t.n_elements) for t in written.tensors)
    assert facts["weights_bytes"] == sum(int(t.n_bytes) for t in written.tensors)
    assert facts["tensor_data_offset"] == written.data_offset
    assert header.metadata["tokenizer.ggml.model"] == "llama"
    assert header.metadata["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert header.metadata["tokenizer.ggml.add_bos_token"] is True
    # one range of 256 KiB, capped at the file's end: the file is smaller than the first range
    assert reader.reads == [(0, min(INITIAL_RANGE, reader.size))]


def test_tensor_infos_match_gguf_reader(samples):
    for name in ("tiny", "quantized", "per_layer"):
        header, _facts, _reader = parse(samples[name])
        written = gguf.GGUFReader(str(getattr(samples[name], "path", samples[name])))
        theirs = {t.name: (t.shape.tolist(), int(t.tensor_type), int(t.data_offset) - written.data_offset,
                           int(t.n_bytes)) for t in written.tensors}
        ours = {t.name: (t.dims, t.type, t.offset, t.nbytes) for t in header.tensors}
        assert ours == theirs, name


def test_large_vocabulary_is_read_in_doubling_ranges_up_to_the_tensor_infos(samples):
    sample = samples["vocab"]
    header, facts, reader = parse(sample.path)
    assert facts["vocab_size"] == sample.n_vocab == 120_000
    assert isinstance(header.metadata["tokenizer.ggml.tokens"], GGUFArray)
    assert header.metadata["tokenizer.ggml.tokens"].values is None  # counted, not kept
    assert header.infos_end > 4 * INITIAL_RANGE
    # each read continues where the previous stopped and doubles what is held
    held = 0
    for offset, length in reader.reads:
        assert offset == held
        assert length == (INITIAL_RANGE if held == 0 else held)
        held += length
    assert len(reader.reads) > 3
    assert header.bytes_read == held == reader.furthest
    # never more than twice the header, and nowhere near the whole file's weights
    assert header.infos_end <= header.bytes_read < 2 * header.infos_end
    assert header.ranges == [list(r) for r in reader.reads]
    assert [t.name for t in header.tensors][-1] == "output.weight"
    assert facts["weights_bytes"] == reader.size - facts["tensor_data_offset"]


def test_a_smaller_first_range_reads_less(samples):
    header, _facts, reader = parse(samples["tiny"], initial=4096)
    assert reader.reads[0] == (0, 4096)
    assert header.infos_end <= header.bytes_read < max(4096, 2 * header.infos_end)


def test_quantized_model(samples):
    sample = samples["quantized"]
    _header, facts, reader = parse(sample.path)
    assert facts["quantization"] == "Q4_K_M" and facts["file_type"] == int(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    assert facts["head_count_kv"] == 2 and facts["key_length"] == 64
    assert facts["parameter_count"] == sample.parameter_count
    assert facts["weights_bytes"] == reader.size - facts["tensor_data_offset"]


def test_per_layer_kv_heads_alignment_and_tied_output(samples):
    sample = samples["per_layer"]
    header, facts, reader = parse(sample.path)
    assert facts["head_count_kv_layers"] == [4, 2, 1] and facts["head_count_kv"] == 4
    assert facts["alignment"] == header.alignment == 64
    assert facts["tensor_data_offset"] % 64 == 0
    assert facts["tensor_data_offset"] == gguf.GGUFReader(str(sample.path)).data_offset
    # no output.weight: Ollama counts the token embeddings as the output projection
    assert "output.weight" not in {t.name for t in header.tensors}
    assert facts["ollama_weights_bytes"] == facts["weights_bytes"]


def test_ollama_weights_leave_out_the_input_embeddings(samples):
    header, facts, _reader = parse(samples["tiny"])
    embd = next(t for t in header.tensors if t.name == "token_embd.weight")
    assert facts["ollama_weights_bytes"] == facts["weights_bytes"] - embd.nbytes


@pytest.mark.parametrize("name", ["every_type", "big_endian"])
def test_every_metadata_value_type(samples, name):
    header, facts, _reader = parse(samples[name].path)
    assert header.byte_order == ("big" if name == "big_endian" else "little")
    for key, (value, _vtype, _sub) in EVERY_TYPE.items():
        found = header.metadata[key]
        if isinstance(found, GGUFArray):
            found = found.values
        if isinstance(value, float) or (isinstance(value, list) and isinstance(value[0], float)):
            assert found == pytest.approx(value), key
        else:
            assert found == value, key
    assert facts["block_count"] == 2 and facts["vocab_size"] == 300


def test_type_tables_match_ggml_as_gguf_defines_it():
    for qtype in gguf.GGMLQuantizationType:
        name, block, size = GGML_TYPES[int(qtype)]
        assert (name, (block, size)) == (qtype.name, gguf.GGML_QUANT_SIZES[qtype])
    for ftype in gguf.LlamaFileType:
        if ftype == gguf.LlamaFileType.GUESSED:
            continue
        assert FILE_TYPES[int(ftype)] == ftype.name.replace("MOSTLY_", "").replace("ALL_", "")


def test_unknown_tensor_type_is_measured_by_offsets(samples, tmp_path):
    """A ggml type newer than the table: its size comes from where the next tensor starts."""
    source = samples["tiny"]
    header, facts, _reader = parse(source)
    target = next(t for t in header.tensors if t.name == "blk.0.attn_q.weight")
    data = bytearray(source.read_bytes())
    name = target.name.encode()
    # the tensor info: name, dim count, dims, then the type field to overwrite with an unknown id
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", data, at)[0]
    struct.pack_into("<I", data, at + 4 + 8 * n_dims, 99)
    patched = tmp_path / "unknown-type.gguf"
    patched.write_bytes(bytes(data))
    header2, facts2, _ = parse(patched)
    assert next(t for t in header2.tensors if t.name == target.name).type_name == "type99"
    assert facts2["weights_bytes"] == facts["weights_bytes"]


def test_not_a_gguf_file_is_refused_after_one_read(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is a template, not a model\n" * 20000)
    reader = RangeFile(path)
    with pytest.raises(GGUFError) as err:
        read_header(reader, size=reader.size)
    assert err.value.kind == "not_gguf" and "b'this'" in str(err.value)
    assert len(reader.reads) == 1


def test_truncated_header(samples, tmp_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(samples["vocab"].path.read_bytes()[:300_000])
    with pytest.raises(GGUFError) as err:
        parse(path)
    assert err.value.kind == "truncated" and "300000" in str(err.value)


def test_unsupported_version(tmp_path):
    path = tmp_path / "v1.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<I", 1) + bytes(64))
    with pytest.raises(GGUFError) as err:
        parse(path)
    assert err.value.kind == "version" and "version 1" in str(err.value)


def test_a_corrupt_length_does_not_make_it_read_gigabytes():
    # a key whose length claims 2^40 bytes, in a file that goes on (a blob of many GB)
    prefix = b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1 << 40)
    reads = []

    def read(offset, length):
        reads.append((offset, length))
        return (prefix + bytes(offset + length))[offset : offset + length]

    with pytest.raises(GGUFError) as err:
        read_header(read)
    assert err.value.kind == "corrupt" and "more than a GGUF header can hold" in str(err.value)
    assert reads == [(0, INITIAL_RANGE)]


def test_weights_are_never_read_for_a_model_bigger_than_the_first_range(tmp_path):
    """A model file of several MB with a small header: one 256 KiB read, the rest untouched."""
    path = make_gguf(tmp_path / "large.gguf", seed=1, size_mb=4)
    reader = RangeFile(path)
    header = read_header(reader, size=reader.size)
    assert reader.reads == [(0, INITIAL_RANGE)]
    assert header.data_offset < INITIAL_RANGE < reader.size // 100
    facts = model_facts(header, reader.size)
    weights = gguf.GGUFReader(str(path)).tensors
    assert facts["weights_bytes"] == sum(int(t.n_bytes) for t in weights) == reader.size - header.data_offset
    assert facts["quantization"] == "F16" and facts["embedding_length"] == 1024


def test_model_facts_needs_an_architecture(tmp_path):
    writer = gguf.GGUFWriter(str(tmp_path / "x.gguf"), "llama")
    writer.add_tensor("t", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = (tmp_path / "x.gguf").read_bytes().replace(b"general.architecture", b"general.architecturX")
    (tmp_path / "y.gguf").write_bytes(data)
    reader = RangeFile(tmp_path / "y.gguf")
    header = read_header(reader, size=reader.size)
    with pytest.raises(GGUFError, match="general.architecture"):
        model_facts(header)
