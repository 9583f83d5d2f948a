# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The header of a GGUF model file (versions 2 and 3), read from byte ranges without the weights.

Layout, all little-endian unless the file is a big-endian GGUF:

    magic "GGUF" | version u32 | tensor count u64 | metadata count u64
    metadata:     key (u64 length + UTF-8) | value type u32 | value
    tensor infos: name | dimension count u32 | dimensions u64... | ggml type u32 | data offset u64
    padding to general.alignment (32 by default), then the tensor data

The header of a real model runs to several MB (the tokenizer's vocabulary and merges are metadata
arrays), so `read_header` asks for a first range and doubles what it holds until the tensor infos
are parsed; only the bytes beyond what it already has are requested each time.
"""

from __future__ import annotations

import struct

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
INITIAL_RANGE = 256 * 1024
# a header is a few MB; a length field that points beyond this is a corrupt file, not a bigger header
MAX_HEADER_BYTES = 512 * 1024 * 1024
# metadata arrays up to this many elements keep their values (per-layer head counts and the like);
# longer ones (the vocabulary) keep their element type and count only
KEEP_ARRAY_VALUES = 4096
MAX_DIMS = 8

# metadata value types
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING = 8
_ARRAY = 9
VALUE_TYPE_NAMES = {
    0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32", 7: "bool",
    8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64",
}

# ggml tensor types: id -> (name, elements per block, bytes per block), as ggml defines them
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}

# general.file_type (llama_ftype) -> the quantisation name Ollama and llama.cpp show
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "MXFP4", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
    18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S",
    25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
    36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}


class GGUFError(CollectionError):
    """`kind` is one of not_gguf, version, truncated, corrupt."""

    default_kind = "corrupt"


class _NeedMore(Exception):
    """The buffer ends before `needed` bytes: read further and parse again."""

    def __init__(self, needed):
        super().__init__(needed)
        self.needed = needed


class GGUFArray:
    """A metadata array: its element type and length, and its values when it is short enough to keep."""

    __slots__ = ("item_type", "count", "values")

    def __init__(self, item_type, count, values=None):
        self.item_type = item_type
        self.count = count
        self.values = values

    def __len__(self):
        return self.count

    def __repr__(self):
        return f"GGUFArray({VALUE_TYPE_NAMES.get(self.item_type, self.item_type)}, {self.count})"


class TensorInfo:
    __slots__ = ("name", "dims", "type", "offset")

    def __init__(self, name, dims, ggml_type, offset):
        self.name = name
        self.dims = dims
        self.type = ggml_type
        self.offset = offset

    @property
    def elements(self):
        count = 1
        for dim in self.dims:
            count *= dim
        return count

    @property
    def type_name(self):
        known = GGML_TYPES.get(self.type)
        return known[0] if known else f"type{self.type}"

    @property
    def nbytes(self):
        """Bytes of the tensor's data, None for a ggml type this table does not know."""
        known = GGML_TYPES.get(self.type)
        if not known:
            return None
        _name, block, size = known
        return self.elements // block * size


class GGUFHeader:
    def __init__(self, version, byte_order, metadata, tensors, infos_end, value_types=None):
        self.version = version
        self.byte_order = byte_order
        self.metadata = metadata
        # key -> GGUF value type id: readers that, like Ollama, honour a key only in one type need it
        self.value_types = value_types or {}
        self.tensors = tensors
        self.infos_end = infos_end
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise GGUFError(f"general.alignment {alignment!r} is not a power of two", kind="corrupt")
        self.alignment = alignment
        self.data_offset = -(-infos_end // alignment) * alignment
        self.bytes_read = 0
        self.ranges = []

    def tensor_bytes(self, file_size=None):
        """{name: bytes of data}; a tensor of an unknown ggml type is measured by the offsets around it
        (which needs the file size when it is the last one), else its value is None."""
        sizes = {t.name: t.nbytes for t in self.tensors}
        if None in sizes.values():
            ordered = sorted(self.tensors, key=lambda t: t.offset)
            end = file_size - self.data_offset if file_size else None
            for index, tensor in enumerate(ordered):
                if sizes[tensor.name] is None:
                    following = ordered[index + 1].offset if index + 1 < len(ordered) else end
                    sizes[tensor.name] = following - tensor.offset if following is not None else None
        return sizes


class _Cursor:
    def __init__(self, data, complete):
        self.data = data
        self.pos = 0
        self.complete = complete
        self.order = "<"

    def need(self, count):
        end = self.pos + count
        if end > len(self.data):
            if self.complete:
                raise GGUFError(
                    f"the file ends at byte {len(self.data)} inside its header (byte {end} is needed)", kind="truncated"
                )
            if end > MAX_HEADER_BYTES:
                raise GGUFError(
                    f"a field at byte {self.pos} claims {count} bytes, more than a GGUF header can hold", kind="corrupt"
                )
            raise _NeedMore(end)
        start = self.pos
        self.pos = end
        return start

    def unpack(self, fmt):
        fmt = self.order + fmt
        start = self.need(struct.calcsize(fmt))
        return struct.unpack_from(fmt, self.data, start)

    def u32(self):
        return self.unpack("I")[0]

    def u64(self):
        return self.unpack("Q")[0]

    def string(self, decode=True):
        length = self.u64()
        start = self.need(length)
        if not decode:
            return None
        return bytes(self.data[start : start + length]).decode("utf-8", errors="replace")

    def value(self, vtype, key):
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])[0]
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type = self.u32()
            count = self.u64()
            keep = count <= KEEP_ARRAY_VALUES
            if item_type in _SCALAR:
                fmt = f"{self.order}{count}{_SCALAR[item_type]}"
                start = self.need(count * struct.calcsize(self.order + _SCALAR[item_type]))
                values = list(struct.unpack_from(fmt, self.data, start)) if keep else None
            elif item_type == _STRING:
                values = [self.string(decode=keep) for _index in range(count)] if keep else None
                if not keep:
                    for _index in range(count):
                        self.string(decode=False)
            else:
                # nested arrays exist in the format but in no model; their size cannot be skipped blindly
                raise GGUFError(
                    f"metadata {key!r} is an array of {VALUE_TYPE_NAMES.get(item_type, item_type)}, "
                    "which this reader does not support",
                    kind="corrupt",
                )
            return GGUFArray(item_type, count, values)
        raise GGUFError(f"metadata {key!r} has the unknown value type {vtype}", kind="corrupt")


def parse_header(data, complete=False):
    """Parse a GGUF header from the start of a file. Raises _NeedMore when `data` ends inside it and
    more of the file exists (`complete` false), GGUFError when it is not a GGUF header."""
    cur = _Cursor(data, complete)
    cur.need(4)
    magic = bytes(data[0:4])
    if magic != GGUF_MAGIC:
        raise GGUFError(f"the file starts with {magic!r}, not the GGUF magic {GGUF_MAGIC!r}", kind="not_gguf")
    version = cur.u32()
    if version & 0xFFFF == 0 and version >> 24 in SUPPORTED_VERSIONS:
        # a big-endian GGUF: its version reads byte-swapped
        cur.order = ">"
        version >>= 24
    if version not in SUPPORTED_VERSIONS:
        raise GGUFError(
            f"GGUF version {version} is not supported (versions {', '.join(map(str, SUPPORTED_VERSIONS))} are)",
            kind="version",
        )
    tensor_count = cur.u64()
    kv_count = cur.u64()
    metadata, value_types = {}, {}
    for _index in range(kv_count):
        key = cur.string()
        value_types[key] = cur.u32()
        metadata[key] = cur.value(value_types[key], key)
    tensors = []
    for _index in range(tensor_count):
        name = cur.string()
        n_dims = cur.u32()
        if n_dims > MAX_DIMS:
            raise GGUFError(f"tensor {name!r} claims {n_dims} dimensions", kind="corrupt")
        dims = list(cur.unpack(f"{n_dims}Q")) if n_dims else []
        ggml_type, offset = cur.unpack("IQ")
        tensors.append(TensorInfo(name, dims, ggml_type, offset))
    return GGUFHeader(version, "big" if cur.order == ">" else "little", metadata, tensors, cur.pos, value_types)


def read_header(read, size=None, initial=INITIAL_RANGE):
    """Parse the header of a file read through `read(offset, length) -> bytes`.

    Reads [0, initial) first and, while the tensor infos go on past what it holds, the bytes up to
    twice as far (or as far as the field being parsed needs). `read` may return fewer bytes than asked
    only at the end of the file. With `size` (the file's length) no range reaches past the end.
    The header's `bytes_read` and `ranges` ([offset, length] pairs) record what was read.
    """
    buf = bytearray()
    ranges = []
    want = initial
    at_end = False
    while True:
        if size is not None:
            want = min(want, size)
        if want > len(buf) and not at_end:
            asked = want - len(buf)
            chunk = read(len(buf), asked)
            ranges.append([len(buf), asked])
            buf += chunk
            at_end = len(chunk) < asked or (size is not None and len(buf) >= size)
        try:
            header = parse_header(memoryview(buf), complete=at_end)
        except _NeedMore as more:
            want = max(2 * len(buf), more.needed)
            continue
        header.bytes_read = len(buf)
        header.ranges = ranges
        return header


def _arch_value(metadata, arch, key, default=None):
    return metadata.get(f"{arch}.{key}", default)


def _per_layer(value, layers):
    """A count that is either one integer or one per layer -> (max, [per layer] or None)."""
    if isinstance(value, GGUFArray):
        values = [int(v) for v in (value.values or [])]
        if not values:
            return None, None
        if len(values) < layers:
            values += [values[-1]] * (layers - len(values))
        return max(values), values[:layers] if layers else values
    if value is None:
        return None, None
    return int(value), None


def model_facts(header, file_size=None):
    """What sizing needs from a header, as plain JSON-able values (None where the model does not say)."""
    md = header.metadata
    arch = md.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise GGUFError("the header has no general.architecture: not a model GGUF", kind="corrupt")
    block_count = int(_arch_value(md, arch, "block_count", 0) or 0)
    embedding = _arch_value(md, arch, "embedding_length")
    embedding = int(embedding) if embedding is not None else None
    head_count, head_layers = _per_layer(_arch_value(md, arch, "attention.head_count"), block_count)
    kv_raw = _arch_value(md, arch, "attention.head_count_kv")
    head_count_kv, kv_layers = _per_layer(kv_raw, block_count)
    if head_count_kv is None:
        # llama.cpp: without head_count_kv every head has its own keys and values
        head_count_kv, kv_layers = head_count, head_layers
    # the head dimension defaults to embedding / heads, with the smallest head count as Ollama takes it
    min_heads = min(head_layers) if head_layers else head_count
    head_dim = embedding // min_heads if embedding and min_heads else None
    key_length = _arch_value(md, arch, "attention.key_length", head_dim)
    value_length = _arch_value(md, arch, "attention.value_length", head_dim)
    ff_max, _ff_layers = _per_layer(_arch_value(md, arch, "feed_forward_length"), block_count)
    tokens = md.get("tokenizer.ggml.tokens")
    if isinstance(tokens, GGUFArray):
        vocab_size = tokens.count
    else:
        vocab_size = _arch_value(md, arch, "vocab_size")
        if vocab_size is None:
            embd = next((t for t in header.tensors if t.name == "token_embd.weight"), None)
            vocab_size = embd.dims[1] if embd and len(embd.dims) > 1 else None
    sizes = header.tensor_bytes(file_size)
    known = [size for size in sizes.values() if size is not None]
    weights = sum(known) if len(known) == len(sizes) else None
    file_type = md.get("general.file_type")
    quantization = FILE_TYPES.get(file_type) if isinstance(file_type, int) else None
    if quantization is None:
        quantization = _dominant_type(header, sizes)
    facts = {
        "gguf_version": header.version,
        "architecture": arch,
        "model_name": md.get("general.name"),
        "parameter_count": sum(t.elements for t in header.tensors),
        "tensor_count": len(header.tensors),
        "file_type": file_type if isinstance(file_type, int) else None,
        "quantization": quantization,
        "block_count": block_count,
        "head_count": head_count,
        "head_count_kv": head_count_kv,
        "embedding_length": embedding,
        "key_length": int(key_length) if key_length is not None else None,
        "value_length": int(value_length) if value_length is not None else None,
        "feed_forward_length": ff_max,
        "context_length": _int_or_none(_arch_value(md, arch, "context_length")),
        "vocab_size": int(vocab_size) if vocab_size is not None else None,
        "weights_bytes": weights,
        "ollama_weights_bytes": _ollama_weights(sizes) if weights is not None else None,
        "header_bytes": header.infos_end,
        "tensor_data_offset": header.data_offset,
        "alignment": header.alignment,
        "bytes_read": header.bytes_read,
    }
    if kv_layers is not None:
        facts["head_count_kv_layers"] = kv_layers
    return facts


def _int_or_none(value):
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _dominant_type(header, sizes):
    """Without general.file_type: the ggml type holding most of the weights (e.g. Q4_K)."""
    totals = {}
    for tensor in header.tensors:
        totals[tensor.type_name] = totals.get(tensor.type_name, 0) + (sizes.get(tensor.name) or 0)
    return max(totals, key=totals.get) if totals else None


def _ollama_weights(sizes):
    """The weights Ollama 0.18.3 counts for a model on its llama.cpp engine (what `ollama ps` shows
    besides the KV cache): the repeating layers (blk.N.*), output_norm, and the output projection,
    or the token embeddings where the model ties them to the output. The input token embeddings
    of a model with its own output projection are not counted, though they are loaded."""
    blocks = sum(size for name, size in sizes.items() if name.startswith("blk."))
    group = {}
    for name, size in sizes.items():
        prefix = name.rsplit(".", 1)[0] if "." in name else name
        group[prefix] = group.get(prefix, 0) + size
    output = group.get("output", group.get("token_embd", 0))
    return blocks + group.get("output_norm", 0) + output
