# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A model derived FROM a model of the store with PARAMETER lines, as `ollama create` writes it.

Ollama 0.18.3, for the Modelfile `FROM <base>` plus `PARAMETER <key> <value>` lines
(server/create.go CreateHandler, createModel, setParameters, createConfigLayer):

    layers    every layer of the base, `"from": <base, DisplayShortest>`, its size that of the blob file;
              the base's params layers removed, one new params layer appended last: the Modelfile's
              parameters over the base's (Go's json.Encoder of a map: sorted keys, numbers as float64)
    config    ConfigV2: model_format, model_family(ies), model_type (HumanNumber of the tensors'
              elements), file_type, from each GGUF layer's header; renderer, parser and requires from
              the base's config; os linux, architecture amd64; rootfs.diff_ids the layers' digests
    manifest  schemaVersion 2, the docker v2 manifest media type, the config without "from"

Every document ends with the encoder's newline. The functions here only compute bytes; the store
writes them. A GGUF layer is read only up to the end of its header, never its weights.
"""

from __future__ import annotations

import json
import math
import os
from decimal import Decimal

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError
from ansible_collections.aiplatform.ollama.plugins.module_utils.gguf_header import GGUFError, read_header
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import DEFAULT_NAMESPACE, DEFAULT_REGISTRY
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import content_digest
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import StoreError

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
PARAMS_MEDIA_TYPE = "application/vnd.ollama.image.params"
# the layers Ollama decodes as GGUF (server/model.go parseFromModel)
GGUF_MEDIA_TYPES = (
    "application/vnd.ollama.image.model",
    "application/vnd.ollama.image.projector",
    "application/vnd.ollama.image.adapter",
)
# fs/ggml/type.go FileType.String(): narrower than llama.cpp's list, everything else is "unknown"
OLLAMA_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "MXFP4", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
    18: "Q6_K", 21: "Q2_K_S", 32: "BF16",
}
GGUF_UINT32 = 4
_JSON_SPACE = " \t\r\n"
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class DerivedModelError(CollectionError):
    """`kind` is one of not_found (the base or one of its blobs), corrupt (a blob Ollama could not read
    either), io (a blob that cannot be read), invalid_input (a base Ollama would not derive from locally)."""

    default_kind = "corrupt"


# -- Go's encoding/json -------------------------------------------------------------------------


def go_float(value):
    """A float64 as Go's encoding/json writes it: the shortest round-trip digits, fixed notation from
    1e-6 up to 1e21, else `1e+21` / `1e-7` (no zero padding of a negative exponent)."""
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{value!r} has no JSON form (Go's encoder refuses it)")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    # repr is the shortest string that reads back as the same float64, as Go's strconv 'f'/'e' with -1
    _sign, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    scientific = len(digits) - 1 + exponent
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        power = f"-{-scientific}" if scientific < 0 else f"+{scientific:02d}"
        return f"{sign}{mantissa}e{power}"
    if exponent >= 0:
        return sign + digits + "0" * exponent
    point = len(digits) + exponent
    if point > 0:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}0.{'0' * -point}{digits}"


def _go_string(text):
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u00{ord(char):02x}")
        elif "\ud800" <= char <= "\udfff":
            out.append("\\ufffd")  # a lone surrogate: Go's decoder made it U+FFFD already
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def go_json(value, sort_keys=False):
    """`value` as Go's json.Encoder writes it, without its final newline: compact, `<`, `>`, `&`, U+2028
    and U+2029 escaped, floats as go_float. Dicts keep their order (a Go struct's fields) unless
    `sort_keys` (a Go map, which encodes sorted)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else value.items()
        return "{" + ",".join(f"{_go_string(k)}:{go_json(v, sort_keys)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(item, sort_keys) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def go_encode(value, sort_keys=False):
    """The bytes json.NewEncoder(w).Encode(value) writes: go_json and a newline."""
    return (go_json(value, sort_keys) + "\n").encode("utf-8")


def go_decode(body):
    """The first JSON value of `body` as Go's json.Decoder reads it into `any`: every number a float64,
    invalid UTF-8 replaced, what follows the value ignored. ValueError when it is not JSON."""
    text = body.decode("utf-8", errors="replace").lstrip(_JSON_SPACE)

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    value, _end = json.JSONDecoder(parse_int=float, parse_constant=refuse).raw_decode(text)
    return value


# -- Ollama's formats ---------------------------------------------------------------------------


def human_number(count):
    """format.HumanNumber: 72700000000 -> 72.7B, 494000000 -> 494M, 1500000 -> 1.50M, 2500 -> 2K."""
    for limit, suffix, decimals in ((1_000_000_000, "B", 1), (1_000_000, "M", 2)):
        if count >= limit:
            number = float(count) / limit
            return f"{number:.0f}{suffix}" if number == math.floor(number) else f"{number:.{decimals}f}{suffix}"
    if count >= 1000:
        return f"{float(count) / 1000:.0f}K"
    return str(count)


def display_shortest(ref):
    """model.Name.DisplayShortest: the registry and namespace left out where they are the defaults
    (compared without regard to case), the tag always written."""
    if ref.host.lower() != DEFAULT_REGISTRY:
        return f"{ref.host}/{ref.namespace}/{ref.model}:{ref.tag}"
    if ref.namespace.lower() != DEFAULT_NAMESPACE:
        return f"{ref.namespace}/{ref.model}:{ref.tag}"
    return f"{ref.model}:{ref.tag}"


def merge_parameters(base_params, parameters):
    """setParameters: the new parameters, then each key of the base's params layers (in layer order)
    that they do not set."""
    merged = dict(parameters)
    for params in base_params:
        for key, value in params.items():
            merged.setdefault(key, value)
    return merged


def check_local_source(ref):
    """Ollama reads a `:cloud`, `-cloud` or `:local` tag as where the model runs, not as its name
    (internal/modelref): `FROM` such a model does not derive from the model of the store."""
    tag = ref.tag.lower()
    if tag in ("cloud", "local") or tag.endswith("-cloud"):
        raise DerivedModelError(
            f"{ref.short} cannot be derived from: Ollama reads its tag {ref.tag!r} as a model source (cloud or "
            "local), so `ollama create` FROM it would not derive from the model in the store; give the model "
            "another tag",
            kind="invalid_input",
        )


# -- reading the store --------------------------------------------------------------------------


def _read_blob(store, digest, what):
    path = store.blob_path(digest)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as err:
        raise DerivedModelError(f"{what} {digest} is missing from {store.blobs_dir}", kind="not_found",
                                digest=digest) from err
    except OSError as err:
        raise DerivedModelError(f"reading {what} {path}: {err.strerror}", kind="io", path=path) from err


def _blob_size(store, digest, where):
    path = store.blob_path(digest)
    try:
        return os.stat(path).st_size
    except OSError as err:
        raise DerivedModelError(f"layer {digest} of {where} is missing from {store.blobs_dir} ({err.strerror}): "
                                "seed the model again", kind="not_found", digest=digest) from err


def gguf_layer_facts(store, digest, where):
    """(architecture, parameter count, file type) of a GGUF layer as Ollama's ggml.Decode reads them,
    from its header only; DerivedModelError naming the blob when Ollama could not decode it either."""
    path = store.blob_path(digest)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the header is read
    except OSError as err:
        raise DerivedModelError(f"layer {digest} of {where} cannot be read from {store.blobs_dir} ({err.strerror})",
                                kind="not_found", digest=digest) from err
    with handle:
        size = os.fstat(handle.fileno()).st_size

        def read(offset, length):
            return os.pread(handle.fileno(), length, offset)

        try:
            header = read_header(read, size=size)
        except GGUFError as err:
            raise DerivedModelError(
                f"the GGUF header of layer {digest} of {where} ({path}) cannot be read: {err}. Ollama cannot derive "
                "from it either: remove the model (state=absent) and seed it again, or repair its registry copy",
                kind="corrupt", digest=digest, path=path,
            ) from err
    for tensor in header.tensors:
        # ggml.Decode refuses a file whose tensors reach past its end
        end = header.data_offset + tensor.offset + (tensor.nbytes or 0)
        if end > size:
            raise DerivedModelError(
                f"layer {digest} of {where} ({path}) is cut short: tensor {tensor.name!r} ends at byte {end}, the "
                f"file has {size}: remove the model (state=absent) and seed it again",
                kind="corrupt", digest=digest, path=path,
            )
    metadata = header.metadata
    architecture = metadata.get("general.architecture")
    if not isinstance(architecture, str):
        architecture = "unknown"
    # Ollama takes general.file_type only as a uint32, and 0 (F32) only as "unknown" (KV.FileType)
    file_type = metadata.get("general.file_type")
    if header.value_types.get("general.file_type") != GGUF_UINT32 or not file_type:
        file_type = None
    parameters = sum(tensor.elements for tensor in header.tensors) % (1 << 64)
    return architecture, parameters, OLLAMA_FILE_TYPES.get(file_type, "unknown")


def _base_params(store, layers, where):
    found = []
    for layer in layers:
        if layer.get("mediaType") != PARAMS_MEDIA_TYPE:
            continue
        body = _read_blob(store, layer["digest"], f"the params layer of {where}")
        try:
            params = go_decode(body)
        except ValueError as err:
            raise DerivedModelError(f"the params layer {layer['digest']} of {where} is not JSON ({err}): Ollama "
                                    "cannot derive from it either; seed the model again",
                                    digest=layer["digest"]) from err
        if params is None:
            continue  # Go decodes null into an empty map
        if not isinstance(params, dict):
            raise DerivedModelError(f"the params layer {layer['digest']} of {where} holds a JSON "
                                    f"{type(params).__name__}, not an object: Ollama cannot derive from it either",
                                    digest=layer["digest"])
        found.append(params)
    return found


def _base_config(store, manifest):
    """renderer, parser and requires of the base's config, where it reads as a ConfigV2."""
    digest = (manifest.get("config") or {}).get("digest")
    if not digest:
        return {}
    try:
        config = go_decode(_read_blob(store, digest, "config"))
    except (DerivedModelError, ValueError):
        return {}  # Ollama ignores a base config it cannot read
    if not isinstance(config, dict):
        return {}
    # omitempty: an empty one is left out
    return {key: config[key] for key in ("renderer", "parser", "requires") if isinstance(config.get(key), str)
            and config[key]}


# -- the derived model --------------------------------------------------------------------------


class DerivedModel:
    """What `ollama create` writes: the params and config blobs, and the manifest."""

    def __init__(self, params, config, manifest):
        self.params = params
        self.config = config
        self.manifest = manifest

    @property
    def blobs(self):
        """[(digest, bytes)] of the blobs the derivation adds to the store."""
        return [(content_digest(body), body) for body in (self.params, self.config)]

    @property
    def manifest_digest(self):
        return content_digest(self.manifest)


def derive(store, base_ref, base_manifest, parameters):
    """The model `ollama create` makes FROM `base_ref` (whose manifest in `store` is `base_manifest`,
    None when the store has none) with `parameters` ({"num_thread": 4}). DerivedModelError naming the base
    and the blob when Ollama would fail too."""
    where = f"{base_ref.short} in the store {store.root}"
    if base_manifest is None:
        raise DerivedModelError(
            f"{store.absent_message(base_ref)}: seed it before deriving from it",
            kind="not_found", path=store.manifest_path(base_ref),
        )
    check_local_source(base_ref)
    source = display_shortest(base_ref)
    config = {"model_format": "", "model_family": "", "model_families": None, "model_type": "", "file_type": ""}
    layers, families = [], []
    try:
        for layer in base_manifest.get("layers") or []:
            digest, media_type = layer.get("digest") or "", layer.get("mediaType") or ""
            if media_type in GGUF_MEDIA_TYPES:
                architecture, parameter_count, file_type = gguf_layer_facts(store, digest, where)
                config["model_format"] = config["model_format"] or "gguf"
                config["model_family"] = config["model_family"] or architecture
                config["model_type"] = config["model_type"] or human_number(parameter_count)
                config["file_type"] = config["file_type"] or file_type
                families.append(architecture)
            if media_type != PARAMS_MEDIA_TYPE:
                layers.append({"mediaType": media_type, "digest": digest, "size": _blob_size(store, digest, where),
                               "from": source})
        merged = merge_parameters(_base_params(store, base_manifest.get("layers") or [], where), parameters)
        params = go_encode(merged, sort_keys=True)
    except StoreError as err:  # a digest that is not one
        raise DerivedModelError(f"the manifest of {where} is damaged: {err}", digest=err.digest) from err
    except ValueError as err:  # a number Go's encoder refuses (NaN, infinity)
        raise DerivedModelError(f"the params of {where} cannot be written as JSON: {err}") from err
    layers.append({"mediaType": PARAMS_MEDIA_TYPE, "digest": content_digest(params), "size": len(params)})
    if families:
        config["model_families"] = families
    config.update(_base_config(store, base_manifest))
    config.update(architecture="amd64", os="linux",
                  rootfs={"type": "layers", "diff_ids": [layer["digest"] for layer in layers]})
    config_body = go_encode(config)
    config_layer = {"mediaType": CONFIG_MEDIA_TYPE, "digest": content_digest(config_body),
                    "size": len(config_body)}
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "config": config_layer, "layers": layers}
    return DerivedModel(params, config_body, go_encode(manifest))
