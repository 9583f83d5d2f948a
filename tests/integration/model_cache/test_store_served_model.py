"""ollama_store_model with num_thread against the real Ollama 0.18.3: the served model it writes is the one
`ollama create` writes, byte for byte, and a real server serves it.

Two stores are seeded from the real registry with the same models: the module derives the served model into
the first; the real `ollama create` (FROM the base, PARAMETER num_thread) writes it into the second. The
manifest file, the config blob and the params blob must be the same bytes. The base model of the first case
carries a params layer with stop tokens holding '<', '>' and '&' and float parameters, so the merge, Go's
HTML escaping and its float formatting are what is compared.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.services.ollama import OllamaServer

NUM_THREAD = 4
# what a chat model's Modelfile carries, as the library's qwen2.5 does (stop tokens, sampling floats)
CHAT_PARAMS = {"stop": ["<|im_start|>", "<|im_end|>", "a&b>c"], "temperature": 0.7, "top_p": 0.8,
               "repeat_penalty": 1.05, "min_p": 1e-7, "num_ctx": 2048, "num_thread": 2}


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def post(url: str, body: dict, timeout: float = 120) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def manifest_file(store: Path, name: str) -> Path:
    host, rest = name.split("/", 1)
    repository, tag = rest.rsplit(":", 1)
    return store / "manifests" / host / repository / tag


def blob(store: Path, digest: str) -> bytes:
    return (store / "blobs" / digest.replace(":", "-")).read_bytes()


def ollama_create(workdir: Path, store: Path, served: dict) -> None:
    """The real `ollama create` of each served model ({served: base}) into `store`, as the seed Job runs it."""
    with OllamaServer.start(workdir, {"OLLAMA_NOPRUNE": "1"}, store) as server:
        for index, (name, base) in enumerate(served.items()):
            modelfile = workdir / f"Modelfile.{index}"
            modelfile.write_text(f"FROM {base}\nPARAMETER num_thread {NUM_THREAD}\n")
            server.cli("create", name, "-f", str(modelfile))


@pytest.fixture(scope="module")
def chat_model(registry, model_factory):
    return registry.push_model(model_factory.tiny(seed=401), name="served/chat", tag="v1", params=CHAT_PARAMS,
                               config_extra={"renderer": "qwen3-coder", "parser": "qwen3", "requires": "0.6.0"})


@pytest.fixture(scope="module")
def plain_model(registry, model_factory):
    """No params layer at all: the served model's params are the Modelfile's alone."""
    return registry.push_model(model_factory.tiny(seed=402), name="served/plain", tag="v1")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, chat_model, plain_model, seed_module):
    """Check mode, the seed with num_thread, its rerun; and a second store the real Ollama derives into."""
    work = tmp_path_factory.mktemp("served")
    store, reference = work / "module" / "models", work / "ollama" / "models"
    args = dict(name=[chat_model.ref, plain_model.ref], path=str(store), insecure=True, num_thread=NUM_THREAD)
    check = seed_module(args, check_mode=True)
    written_by_check = files_under(store)
    first = seed_module(args)
    again = seed_module(args)
    check_again = seed_module(args, check_mode=True)
    assert not seed_module(dict(args, path=str(reference), num_thread=0))["failed"]
    ollama_create(work / "ollama", reference, {entry["served"]: entry["name"] for entry in first["models"]})
    return dict(work=work, store=store, reference=reference, args=args, check=check, first=first, again=again,
                check_again=check_again, written_by_check=written_by_check)


def test_check_mode_names_the_served_models_and_writes_nothing(seeded, chat_model):
    check = seeded["check"]
    assert not check["failed"], check["msg"]
    assert check["changed"] and seeded["written_by_check"] == []
    served = [entry["served"] for entry in check["models"]]
    assert served == [f"{chat_model.ref}-t{NUM_THREAD}", served[1]] and served[1].endswith(f":v1-t{NUM_THREAD}")
    assert all(entry["served_changed"] and entry["served_digest"] == "" for entry in check["models"])
    assert f"would write {served[0]}, {served[1]} (num_thread {NUM_THREAD})" in check["msg"]


def test_the_served_model_is_what_ollama_create_writes(seeded):
    store, reference = seeded["store"], seeded["reference"]
    first = seeded["first"]
    assert not first["failed"], first["msg"]
    for entry in first["models"]:
        assert entry["changed"] and entry["served_changed"], entry
        written = manifest_file(store, entry["served"]).read_bytes()
        assert written == manifest_file(reference, entry["served"]).read_bytes(), entry["served"]
        assert entry["served_digest"] == "sha256:" + hashlib.sha256(written).hexdigest()
        manifest = json.loads(written)
        params = next(layer for layer in manifest["layers"] if layer["mediaType"].endswith(".params"))
        for digest in (manifest["config"]["digest"], params["digest"]):
            assert blob(store, digest) == blob(reference, digest)
    # the same files in both stores: nothing more, no temporary file left
    assert files_under(store) == files_under(reference)


def test_the_base_parameters_are_merged_and_escaped_as_go_does(seeded, chat_model):
    entry = seeded["first"]["models"][0]
    manifest = json.loads(manifest_file(seeded["store"], entry["served"]).read_bytes())
    params = blob(seeded["store"], manifest["layers"][-1]["digest"])
    assert params == (b'{"min_p":1e-7,"num_ctx":2048,"num_thread":4,"repeat_penalty":1.05,'
                      b'"stop":["\\u003c|im_start|\\u003e","\\u003c|im_end|\\u003e","a\\u0026b\\u003ec"],'
                      b'"temperature":0.7,"top_p":0.8}\n')
    assert all(layer["from"] == chat_model.ref for layer in manifest["layers"][:-1])
    config = json.loads(blob(seeded["store"], manifest["config"]["digest"]))
    assert (config["renderer"], config["parser"], config["requires"]) == ("qwen3-coder", "qwen3", "0.6.0")
    assert config["file_type"] == "unknown" and config["model_type"].endswith("K")  # an F32 model, as Ollama says


def test_a_rerun_changes_nothing(seeded):
    for run in (seeded["again"], seeded["check_again"]):
        assert not run["failed"] and not run["changed"], run
        assert not any(entry["served_changed"] for entry in run["models"])
        assert [e["served_digest"] for e in run["models"]] == [e["served_digest"] for e in seeded["first"]["models"]]


def test_a_real_server_on_the_seeded_store_serves_the_served_model(seeded, tmp_path):
    entry = seeded["first"]["models"][1]
    with OllamaServer.start(tmp_path / "ollama", {"OLLAMA_NOPRUNE": "1"}, seeded["store"]) as server:
        shown = post(server.url + "/api/show", {"model": entry["served"]})
        assert re.search(rf"^num_thread\s+{NUM_THREAD}$", shown["parameters"], re.M), shown["parameters"]
        chat = post(server.url + "/api/show", {"model": seeded["first"]["models"][0]["served"]})
        assert re.search(r'^stop\s+"<\|im_end\|>"$', chat["parameters"], re.M), chat["parameters"]
        assert re.search(rf"^num_thread\s+{NUM_THREAD}$", chat["parameters"], re.M), chat["parameters"]
        answer = post(server.url + "/api/generate", {"model": entry["served"], "prompt": "hello", "stream": False,
                                                     "options": {"num_predict": 8, "seed": 1, "temperature": 0}})
        assert answer["eval_count"] > 0, answer


def test_a_moved_tag_replaces_the_served_model_and_its_former_blobs(tmp_path, registry, model_factory, seed_module):
    first = registry.push_model(model_factory.tiny(seed=403), name="served/moving", tag="v1",
                                params={"temperature": 0.5})
    store = tmp_path / "models"
    args = dict(name=first.ref, path=str(store), insecure=True, num_thread=2)
    before = seed_module(args)
    assert not before["failed"] and before["served_changed"], before
    former = json.loads(manifest_file(store, before["served"]).read_bytes())
    registry.push_model(model_factory.tiny(seed=404), name="served/moving", tag="v1", params={"temperature": 0.25})
    moved = seed_module(dict(args, state="latest"))
    assert not moved["failed"] and moved["changed"] and moved["served_changed"], moved
    assert moved["served_digest"] != before["served_digest"]
    assert moved["diff"]["before"]["served"]["digest"] == before["served_digest"]
    # the former model's weights, params and config go; what the new manifests still use (the template) stays
    in_use = {layer["digest"] for path in (store / "manifests").rglob("*") if path.is_file()
              for layer in [json.loads(path.read_bytes())["config"], *json.loads(path.read_bytes())["layers"]]}
    gone = [layer["digest"] for layer in [former["config"], *former["layers"]] if layer["digest"] not in in_use]
    assert len(gone) == 3
    assert not {"blobs/" + digest.replace(":", "-") for digest in gone} & set(files_under(store))


def test_a_corrupt_gguf_header_fails_naming_it_and_writes_no_served_model(tmp_path, registry, model_factory,
                                                                         seed_module):
    model = registry.push_model(model_factory.tiny(seed=405), name="served/broken", tag="v1")
    store = tmp_path / "models"
    assert not seed_module(dict(name=model.ref, path=str(store), insecure=True))["failed"]
    layer = next(d for d in model.manifest["layers"] if d["mediaType"].endswith(".model"))
    path = store / "blobs" / layer["digest"].replace(":", "-")
    raw = bytearray(path.read_bytes())
    raw[4:8] = (99).to_bytes(4, "little")  # a GGUF version nobody writes; same size, so the store looks complete
    path.write_bytes(bytes(raw))
    before = files_under(store)
    result = seed_module(dict(name=model.ref, path=str(store), insecure=True, num_thread=2))
    assert result["failed"] and result["error"]["kind"] == "corrupt", result
    assert f"{model.ref}-t2" in result["msg"] and layer["digest"] in result["msg"], result["msg"]
    assert "GGUF version 99" in result["msg"] and "was not written" in result["msg"]
    assert result["changed"] is False and result["models"][0]["served_changed"] is False
    assert files_under(store) == before


@pytest.mark.parametrize("value, said", [(-1, "num_thread must be a whole number of threads"),
                                         (True, "num_thread must be a whole number of threads"),
                                         ("four", "num_thread")])
def test_a_bad_num_thread_is_refused_before_anything_is_written(tmp_path, tiny_model, seed_module, value, said):
    result = seed_module(dict(name=tiny_model.ref, path=str(tmp_path / "models"), insecure=True, num_thread=value))
    assert result["failed"] and said in result["msg"], result
    assert not (tmp_path / "models").exists()


def test_num_thread_is_refused_where_nothing_is_seeded(tmp_path, tiny_model, seed_module):
    result = seed_module(dict(name=tiny_model.ref, path=str(tmp_path / "models"), state="absent", num_thread=2))
    assert result["failed"] and "num_thread applies to state=present or latest" in result["msg"], result


def test_a_served_name_among_the_models_is_refused(tmp_path, tiny_model, seed_module):
    result = seed_module(dict(name=[tiny_model.ref, f"{tiny_model.ref}-t2"], path=str(tmp_path / "models"),
                              insecure=True, num_thread=2))
    assert result["failed"] and "deriving would overwrite a model the task seeds" in result["msg"], result
    assert not (tmp_path / "models").exists()
