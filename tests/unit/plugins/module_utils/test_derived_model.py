"""The served model's derivation on a store built in a temporary directory: Go's JSON encoding, Ollama's
number and name formats, the parameter merge, and every failure named before anything is written.

The expected strings of Go's encoder and of format.HumanNumber are what Go 1.26's encoding/json and
Ollama 0.18.3's function print for the same inputs; the whole derivation is compared with the real
`ollama create` in tests/integration/model_cache/test_store_served_model.py.
"""

from __future__ import annotations

import hashlib
import json

import gguf
import numpy as np
import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.derived_model import (
    DerivedModelError,
    check_local_source,
    derive,
    display_shortest,
    go_decode,
    go_float,
    go_json,
    human_number,
    merge_parameters,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore
from tests.services.gguf_samples import make_sample

MODEL = "application/vnd.ollama.image.model"
TEMPLATE = "application/vnd.ollama.image.template"
PARAMS = "application/vnd.ollama.image.params"
CONFIG = "application/vnd.docker.container.image.v1+json"


@pytest.mark.parametrize("value, written", [
    (0.7, "0.7"), (4096.0, "4096"), (1e-7, "1e-7"), (1e-6, "0.000001"), (1e-5, "0.00001"), (1e21, "1e+21"),
    (1e20, "100000000000000000000"), (1.5e-10, "1.5e-10"), (0.1 + 0.2, "0.30000000000000004"),
    (123456789012345678.0, "123456789012345680"), (-2.5e-8, "-2.5e-8"), (float(2**53 + 1), "9007199254740992"),
    (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"), (0.0, "0"), (-0.0, "-0"),
    (12345678901234567890.0, "12345678901234567000"), (999999999999999999999.0, "1e+21"),
])
def test_floats_are_written_as_go_writes_them(value, written):
    assert go_float(value) == written


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_float_without_a_json_form_is_refused(value):
    with pytest.raises(ValueError, match="no JSON form"):
        go_float(value)


def test_strings_are_escaped_as_go_escapes_them():
    text = "<|im_end|> & \u2028\u2029 \x01\x7f\b\f\n\r\t\"\\ é \ufffd \ud800"
    assert go_json(text) == ('"\\u003c|im_end|\\u003e \\u0026 \\u2028\\u2029 \\u0001\x7f\\b\\f\\n\\r\\t\\"\\\\ é '
                             '\ufffd \\ufffd"')


def test_maps_are_sorted_and_compact_structs_keep_their_order():
    value = {"stop": ["<s>"], "b": {"z": 1, "a": True}, "a": None}
    assert go_json(value, sort_keys=True) == '{"a":null,"b":{"a":true,"z":1},"stop":["\\u003cs\\u003e"]}'
    assert go_json(value) == '{"stop":["\\u003cs\\u003e"],"b":{"z":1,"a":true},"a":null}'


def test_json_is_read_as_go_reads_it_into_any():
    assert go_decode(b' \n{"num_ctx": 4096, "t": 0.5}\ntrailing') == {"num_ctx": 4096.0, "t": 0.5}
    assert isinstance(go_decode(b'{"n": 1}')["n"], float)
    assert go_decode(b'{"s": "a\xffb"}') == {"s": "a\ufffdb"}
    with pytest.raises(ValueError):
        go_decode(b'{"t": NaN}')
    with pytest.raises(ValueError):
        go_decode(b"not json")


@pytest.mark.parametrize("count, shown", [
    (72_700_000_000, "72.7B"), (7_000_000_000, "7B"), (494_032_768, "494.03M"), (1_000_000, "1M"),
    (1_250_000, "1.25M"), (118_000, "118K"), (999, "999"), (0, "0"), (1_500, "2K"), (2_500, "2K"), (3_500, "4K"),
    (999_999, "1000K"), (999_999_999, "1000.00M"),
])
def test_parameter_counts_are_shown_as_ollama_shows_them(count, shown):
    assert human_number(count) == shown


@pytest.mark.parametrize("name, shown", [
    ("qwen2.5:72b", "qwen2.5:72b"), ("qwen2.5", "qwen2.5:latest"), ("myteam/m:v1", "myteam/m:v1"),
    ("Library/m:v1", "m:v1"), ("REGISTRY.OLLAMA.AI/library/m:v1", "m:v1"),
    ("registry.example.com:5000/library/m:v1", "registry.example.com:5000/library/m:v1"),
])
def test_the_base_is_named_as_ollama_displays_it(name, shown):
    assert display_shortest(ModelRef.parse(name)) == shown


def test_the_new_parameters_win_and_the_first_base_layer_before_later_ones():
    merged = merge_parameters([{"num_thread": 2.0, "stop": ["<a>"]}, {"stop": ["<b>"], "top_k": 20.0}],
                              {"num_thread": 4})
    assert merged == {"num_thread": 4, "stop": ["<a>"], "top_k": 20.0}


@pytest.mark.parametrize("name", ["m:cloud", "m:Local", "m:7b-cloud", "host:5000/ns/m:cloud"])
def test_a_tag_ollama_reads_as_a_source_is_refused(name):
    with pytest.raises(DerivedModelError, match="as a model source") as caught:
        check_local_source(ModelRef.parse(name))
    assert caught.value.kind == "invalid_input"


# -- a store built by hand ----------------------------------------------------------------------


def put(store: OllamaStore, body: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    store.ensure_dirs()
    with open(store.blob_path(digest), "wb") as handle:
        handle.write(body)
    return {"mediaType": media_type, "digest": digest, "size": len(body)}


def base_model(store: OllamaStore, gguf_bytes: bytes, params: bytes | None = None, config: dict | None = None):
    layers = [put(store, gguf_bytes, MODEL), put(store, b"{{ .Prompt }}", TEMPLATE)]
    if params is not None:
        layers.append(put(store, params, PARAMS))
    config_layer = put(store, json.dumps(config or {"model_format": "gguf"}).encode(), CONFIG)
    return {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": config_layer, "layers": layers}


@pytest.fixture(scope="module")
def quantised(tmp_path_factory):
    # rows of whole Q4_K blocks (256 elements), so that every tensor holds what the sample records
    return make_sample(tmp_path_factory.mktemp("gguf") / "q4.gguf", quantized=True, n_embd=256, n_ff=512)


def test_a_model_is_derived_as_ollama_create_derives_it(tmp_path, quantised):
    store = OllamaStore(tmp_path)
    ref = ModelRef.parse("team/chat:7b")
    base = base_model(store, quantised.path.read_bytes(), b'{"stop": ["<|im_end|>"], "num_thread": 2, "top_p": 0.8}',
                      {"renderer": "qwen3-coder", "parser": "", "requires": "0.6.0"})
    derived = derive(store, ref, base, {"num_thread": 4})
    assert derived.params == b'{"num_thread":4,"stop":["\\u003c|im_end|\\u003e"],"top_p":0.8}\n'
    assert derived.config.decode() == (
        '{"model_format":"gguf","model_family":"llama","model_families":["llama"],'
        f'"model_type":"{human_number(quantised.parameter_count)}","file_type":"Q4_K_M",'
        '"renderer":"qwen3-coder","requires":"0.6.0","architecture":"amd64","os":"linux",'
        '"rootfs":{"type":"layers","diff_ids":["' + base["layers"][0]["digest"] + '","' + base["layers"][1]["digest"]
        + '","' + derived.blobs[0][0] + '"]}}\n')
    manifest = json.loads(derived.manifest)
    assert derived.manifest.endswith(b"]}\n")
    assert derived.manifest_digest == "sha256:" + hashlib.sha256(derived.manifest).hexdigest()
    assert manifest["config"] == {"mediaType": CONFIG, "digest": derived.blobs[1][0], "size": len(derived.config)}
    assert manifest["layers"] == [dict(layer, **{"from": "team/chat:7b"}) for layer in base["layers"][:2]] + [
        {"mediaType": PARAMS, "digest": derived.blobs[0][0], "size": len(derived.params)}]


def gguf_with(path, file_type_value, file_type_type):
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_key_value("general.file_type", file_type_value, file_type_type)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


@pytest.mark.parametrize("value, value_type, shown", [
    (15, gguf.GGUFValueType.UINT32, "Q4_K_M"),
    (15, gguf.GGUFValueType.INT32, "unknown"),   # Ollama takes the key only as a uint32
    (0, gguf.GGUFValueType.UINT32, "unknown"),   # and 0 (all F32) as not set
    (19, gguf.GGUFValueType.UINT32, "unknown"),  # IQ2_XXS: llama.cpp knows it, Ollama's list does not
])
def test_the_file_type_is_the_one_ollama_reads(tmp_path, value, value_type, shown):
    store = OllamaStore(tmp_path / "store")
    base = base_model(store, gguf_with(tmp_path / "m.gguf", value, value_type))
    config = json.loads(derive(store, ModelRef.parse("m:v1"), base, {"num_thread": 1}).config)
    assert config["file_type"] == shown and config["model_type"] == "32"


def test_a_base_not_in_the_store_is_named(tmp_path):
    store = OllamaStore(tmp_path)
    with pytest.raises(DerivedModelError) as caught:
        derive(store, ModelRef.parse("qwen2.5:72b"), None, {"num_thread": 4})
    assert caught.value.kind == "not_found"
    said = str(caught.value)
    assert "qwen2.5:72b is not in the store" in said and "manifests/registry.ollama.ai" in said


def test_a_missing_layer_is_named(tmp_path, quantised):
    store = OllamaStore(tmp_path)
    base = base_model(store, quantised.path.read_bytes())
    (tmp_path / "blobs" / base["layers"][1]["digest"].replace(":", "-")).unlink()
    with pytest.raises(DerivedModelError, match=f"layer {base['layers'][1]['digest']} of m:v1 .* is missing"):
        derive(store, ModelRef.parse("m:v1"), base, {"num_thread": 4})


@pytest.mark.parametrize("damage, said", [
    (lambda raw: b"GGML" + raw[4:], "not the GGUF magic"),
    (lambda raw: raw[:64], "the file ends at byte 64 inside its header"),
    (lambda raw: raw[:-100], "is cut short: tensor"),
])
def test_a_corrupt_gguf_is_named_with_its_blob(tmp_path, quantised, damage, said):
    store = OllamaStore(tmp_path)
    base = base_model(store, damage(quantised.path.read_bytes()))
    with pytest.raises(DerivedModelError, match=said) as caught:
        derive(store, ModelRef.parse("m:v1"), base, {"num_thread": 4})
    assert caught.value.kind == "corrupt" and base["layers"][0]["digest"] in str(caught.value)


@pytest.mark.parametrize("params, said", [(b"{not json", "is not JSON"), (b"[1, 2]", "holds a JSON list")])
def test_base_params_ollama_cannot_read_are_named(tmp_path, quantised, params, said):
    store = OllamaStore(tmp_path)
    base = base_model(store, quantised.path.read_bytes(), params)
    with pytest.raises(DerivedModelError, match=said):
        derive(store, ModelRef.parse("m:v1"), base, {"num_thread": 4})


def test_null_base_params_are_no_params(tmp_path, quantised):
    store = OllamaStore(tmp_path)
    base = base_model(store, quantised.path.read_bytes(), b"null")
    assert derive(store, ModelRef.parse("m:v1"), base, {"num_thread": 4}).params == b'{"num_thread":4}\n'
