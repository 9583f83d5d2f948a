"""ollama_model_info against the real registry (its CDN redirect included), a store a real Ollama
0.18.3 pulled into, and the memory that Ollama reports and its processes use once the model is loaded.

A recording nginx stands between the module and the registry and its CDN: its log shows every
request with the Range header sent and the bytes that went back, which is what proves the weights
were never transferred.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gguf
import pytest

from tests.services.gguf_samples import make_sample
from tests.services.models import make_quantised_model
from tests.services.nginx import nginx
from tests.services.ollama import OllamaServer
from tests.services.process import free_port

FIRST_RANGE = 256 * 1024
# the GGUF facts the module reports, each compared with what the gguf package wrote
GGUF_FIELDS = ("architecture", "block_count", "head_count", "head_count_kv", "embedding_length", "key_length",
               "value_length", "feed_forward_length", "context_length", "vocab_size", "file_type", "quantization",
               "parameter_count", "weights_bytes", "tensor_data_offset", "tensor_count", "gguf_version")

# every request with its Range header and the bytes sent: what the module read
RANGES_LOG = """\
  log_format ranges '$request_method $request_uri $status "$http_range" $body_bytes_sent';
  access_log {work}/ranges.log ranges;"""
PROXY_SERVER = """\
    listen 127.0.0.1:{port};
    # bytes are passed on as they arrive, so that $body_bytes_sent is what the client received
    proxy_buffering off;
    location /cdn/ {{ proxy_pass http://127.0.0.1:{cdn_port}/; }}
    location / {{
      proxy_pass http://{registry_host};
      # the registry's blob redirect to its CDN comes back through here, still to another host name
      proxy_redirect http://localhost:{cdn_port}/ http://localhost:{port}/cdn/;
    }}"""
_LOG_LINE = re.compile(r'^(\S+) (\S+) (\d+) "([^"]*)" (\d+)$')


class RecordingProxy:
    """A recording nginx in front of the registry and its CDN; `proc` is set while it runs."""

    def __init__(self, workdir: Path, registry):
        self.workdir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.server = PROXY_SERVER.format(port=self.port, cdn_port=registry.cdn_port, registry_host=registry.host)
        self.proc = None

    def mark(self) -> int:
        """Where the log ends now: requests(since=mark()) are those made after this call."""
        log = self.workdir / "ranges.log"
        return log.stat().st_size if log.exists() else 0

    def requests(self, blob_digest: str, since: int = 0, at_cdn: int = 0) -> list[dict]:
        """The logged requests for one blob, at the registry and at the CDN, in order. nginx logs a
        request once it has sent the response, which may be a moment after the client read it: wait
        (5 s at most) until `at_cdn` CDN requests are there."""
        deadline = time.monotonic() + 5
        while True:
            found = self._parse(blob_digest.split(":", 1)[1], since)
            if sum(r["cdn"] for r in found) >= at_cdn or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def _parse(self, hexdigest: str, since: int) -> list[dict]:
        with open(self.workdir / "ranges.log", "rb") as handle:
            handle.seek(since)
            lines = handle.read().decode().splitlines()
        found = []
        for line in lines:
            match = _LOG_LINE.match(line)
            assert match, f"unexpected log line {line!r}"
            method, uri, status, range_header, sent = match.groups()
            if hexdigest in uri:
                found.append({"method": method, "uri": uri, "status": int(status), "range": range_header,
                              "sent": int(sent), "cdn": uri.startswith("/cdn/")})
        return found


@pytest.fixture(scope="module")
def proxy(registry, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("recording-proxy")
    recording = RecordingProxy(workdir, registry)
    with nginx("nginx-recording-proxy", workdir, recording.server, ready_url=f"http://{recording.host}/v2/",
               http=RANGES_LOG.format(work=workdir)) as recording.proc:
        yield recording


@pytest.fixture(scope="module")
def models(registry, model_factory, tmp_path_factory):
    """The GGUF files and what they were published as, under this suite's own repositories."""
    root = tmp_path_factory.mktemp("model-info")
    files = {
        "tiny": model_factory.tiny(seed=41),
        # two layers of 1024 wide: 68 MB of weights behind an 8 KB header
        "large": model_factory.large(64, seed=3),
        # 200k tokens: a 5 MB header, then 100 MB of embeddings
        "vocab": make_sample(root / "vocab.gguf", n_vocab=200_000, n_embd=256, n_head=4, n_head_kv=4, n_ff=256,
                             n_layer=1, tied_output=True).path,
    }
    text = root / "not-a-model.txt"
    text.write_bytes(b"a template where the weights should be\n" * 2000)
    published = {name: registry.push_model(path, name=f"itest/info-{name}", tag="v1") for name, path in files.items()}
    published["text"] = registry.push_model(text, name="itest/info-text", tag="v1")
    return files, published


def via(proxy, published) -> str:
    """The model reference through the recording proxy instead of the registry's own address."""
    return published.ref.replace(published.ref.split("/", 1)[0], proxy.host, 1)


def written_facts(path: Path) -> dict:
    """The fields as the gguf package's reader sees the file the test wrote."""
    reader = gguf.GGUFReader(str(path))

    def scalar(key):
        field = reader.get_field(key)
        return field.contents() if field is not None else None

    arch = scalar("general.architecture")
    heads = scalar(f"{arch}.attention.head_count")
    embedding = scalar(f"{arch}.embedding_length")
    file_type = scalar("general.file_type")
    return {
        "architecture": arch, "block_count": scalar(f"{arch}.block_count"), "head_count": heads,
        "head_count_kv": scalar(f"{arch}.attention.head_count_kv"), "embedding_length": embedding,
        "key_length": embedding // heads, "value_length": embedding // heads,
        "feed_forward_length": scalar(f"{arch}.feed_forward_length"),
        "context_length": scalar(f"{arch}.context_length"),
        "vocab_size": len(reader.get_field("tokenizer.ggml.tokens").data),
        "file_type": file_type, "quantization": gguf.LlamaFileType(file_type).name.split("_", 1)[1],
        "parameter_count": sum(int(t.n_elements) for t in reader.tensors),
        "weights_bytes": sum(int(t.n_bytes) for t in reader.tensors),
        "tensor_data_offset": reader.data_offset, "tensor_count": len(reader.tensors), "gguf_version": 3,
    }


@pytest.mark.parametrize("name", ["tiny", "large"])
def test_fields_match_what_the_gguf_package_wrote(module_runner, proxy, models, name):
    files, published = models
    result = module_runner("ollama_model_info", {"name": via(proxy, published[name]), "insecure": True})
    assert result["failed"] is False and result["changed"] is False, result
    assert {field: result[field] for field in GGUF_FIELDS} == written_facts(files[name])
    manifest = published[name].manifest
    assert result["source"] == "registry" and result["manifest_digest"] == published[name].manifest_digest
    assert result["layers"] == [{"media_type": m["mediaType"], "digest": m["digest"], "size": m["size"]}
                                for m in manifest["layers"]]
    assert result["config"]["digest"] == manifest["config"]["digest"] and result["size"] == published[name].size
    assert result["model_digest"] == manifest["layers"][0]["digest"]
    assert result["blob_size"] == files[name].stat().st_size
    assert result["memory"]["weights_bytes"] == result["weights_bytes"]


def test_only_the_header_crosses_the_wire(module_runner, proxy, models):
    files, published = models
    since = proxy.mark()
    result = module_runner("ollama_model_info", {"name": via(proxy, published["large"]), "insecure": True})
    assert result["failed"] is False, result
    blob = result["model_digest"]
    seen = proxy.requests(blob, since, at_cdn=len(result["ranges_read"]))
    at_cdn = [r for r in seen if r["cdn"]]
    # the registry redirected each range to its CDN, which answered each with 206 and only those bytes
    assert [r["status"] for r in seen if not r["cdn"]] == [307] * len(at_cdn)
    assert [(r["status"], r["range"]) for r in at_cdn] == [(206, f"bytes=0-{FIRST_RANGE - 1}")]
    assert sum(r["sent"] for r in at_cdn) == result["bytes_read"] == FIRST_RANGE
    assert result["tensor_data_offset"] < FIRST_RANGE
    assert result["bytes_read"] * 250 < result["blob_size"] == files["large"].stat().st_size
    print(f"\nlarge model: read {result['bytes_read']} of {result['blob_size']} bytes "
          f"(header {result['header_bytes']} bytes)")


def test_a_header_past_the_first_range_is_read_in_doubling_ranges(module_runner, proxy, models):
    files, published = models
    since = proxy.mark()
    result = module_runner("ollama_model_info", {"name": via(proxy, published["vocab"]), "insecure": True})
    assert result["failed"] is False, result
    assert result["vocab_size"] == 200_000 and result["header_bytes"] > 4 * FIRST_RANGE
    logged = proxy.requests(result["model_digest"], since, at_cdn=len(result["ranges_read"]))
    at_cdn = [r for r in logged if r["cdn"]]
    expected, start, length = [], 0, FIRST_RANGE
    while start < result["bytes_read"]:
        expected.append((206, f"bytes={start}-{start + length - 1}", length))
        start, length = start + length, start + length
    assert [(r["status"], r["range"], r["sent"]) for r in at_cdn] == expected
    assert result["ranges_read"] == [[int(e[1][6:].split("-")[0]), e[2]] for e in expected]
    assert result["header_bytes"] <= result["bytes_read"] < 2 * result["header_bytes"]
    assert result["bytes_read"] * 10 < result["blob_size"] == files["vocab"].stat().st_size
    print(f"\n200k-token vocabulary: read {result['bytes_read']} of {result['blob_size']} bytes in "
          f"{len(at_cdn)} ranges (header {result['header_bytes']} bytes)")


def test_unknown_model_names_model_and_registry(module_runner, registry):
    result = module_runner("ollama_model_info", {"name": f"{registry.host}/itest/info-absent:v9", "insecure": True})
    assert result["failed"] is True and result["error"]["kind"] == "not_found"
    assert f"itest/info-absent:v9 not found in registry {registry.host}" in result["msg"]


def test_unreachable_registry_names_it(module_runner):
    closed = f"127.0.0.1:{free_port()}"
    result = module_runner("ollama_model_info", {"name": f"{closed}/library/x:v1", "insecure": True, "timeout": 5})
    assert result["failed"] is True and result["error"]["kind"] == "unreachable"
    assert f"cannot reach registry {closed}" in result["msg"]


def test_plain_http_registry_without_insecure_says_so(module_runner, registry, models):
    _files, published = models
    result = module_runner("ollama_model_info", {"name": published["tiny"].ref, "timeout": 5})
    assert result["failed"] is True and "insecure=true" in result["msg"]


def test_a_model_layer_that_is_not_gguf(module_runner, proxy, models):
    _files, published = models
    since = proxy.mark()
    result = module_runner("ollama_model_info", {"name": via(proxy, published["text"]), "insecure": True})
    assert result["failed"] is True and result["error"]["kind"] == "not_gguf"
    assert published["text"].manifest["layers"][0]["digest"] in result["msg"]
    assert "itest/info-text:v1" in result["msg"] and "not a GGUF file" in result["msg"]
    # one range was enough to tell
    logged = proxy.requests(published["text"].manifest["layers"][0]["digest"], since, at_cdn=1)
    assert len([r for r in logged if r["cdn"]]) == 1


# -- a store the real Ollama pulled into, and what it reports once the model is loaded ------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory, models):
    """Our own server, so that its processes' memory is this suite's models' alone."""
    _files, published = models
    with OllamaServer.start(tmp_path_factory.mktemp("ollama-model-info"), env={"OLLAMA_NUM_PARALLEL": "1"}) as srv:
        for name in ("tiny", "large"):
            srv.cli("pull", "--insecure", published[name].ref)
        yield srv


def api(server, path, body=None, timeout=600):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("name", ["tiny", "large"])
def test_store_pulled_by_ollama_gives_the_same_answer(module_runner, server, proxy, models, name):
    _files, published = models
    ref = published[name].ref
    from_store = module_runner("ollama_model_info", {"name": ref, "path": str(server.models_dir)})
    assert from_store["failed"] is False, from_store
    from_registry = module_runner("ollama_model_info", {"name": ref, "insecure": True})
    assert from_store["source"] == "store"
    assert Path(from_store["manifest_path"]).is_relative_to(server.models_dir)
    same = [k for k in from_registry if k not in ("source", "manifest_digest", "warnings")]
    assert {k: from_store[k] for k in same} == {k: from_registry[k] for k in same}
    tags = {m["name"]: m for m in api(server, "/api/tags")["models"]}
    assert from_store["manifest_digest"] == "sha256:" + tags[ref]["digest"]
    assert from_store["size"] == tags[ref]["size"]






def buffer_sizes(log: str) -> dict:
    """The CPU buffers the llama.cpp runner reported for its last load, in bytes."""
    sizes = {}
    for kind, mib in re.findall(r"CPU\s+(model|KV|compute|output) buffer size =\s+([\d.]+) MiB", log):
        sizes[kind] = float(mib) * 1024 * 1024
    return sizes


def predicted_and_measured(module_runner, server, ref: str, num_ctx: int) -> dict:
    """{term: (predicted, measured)} for a model in the server's store, loaded with a prompt longer than
    the context, so that the runner fills it and processes full batches: the memory a request can
    reach, not only what loading touches."""
    info = module_runner("ollama_model_info", {"name": ref, "path": str(server.models_dir), "num_ctx": num_ctx})
    memory = info["memory"]
    prompt = " ".join(["the model is ready hello world ollama ok"] * 400)
    done = api(server, "/api/generate", {"model": ref, "prompt": prompt, "stream": False,
                                         "options": {"num_ctx": num_ctx, "num_predict": 4, "temperature": 0}},
               timeout=1200)
    assert done["prompt_eval_count"] >= 0.9 * num_ctx, done
    try:
        loaded = {m["name"]: m for m in api(server, "/api/ps")["models"]}[ref]
        assert loaded["context_length"] == num_ctx and loaded["size_vram"] == 0
        runner, serve = server.runner_memory(info["model_digest"])
        buffers = buffer_sizes((server.workdir / "ollama.log").read_text())
    finally:
        api(server, "/api/generate", {"model": ref, "keep_alive": 0})
    figures = {
        "ollama_ps": (memory["ollama_ps_bytes"], loaded["size"]),
        "weights": (memory["weights_bytes"], buffers["model"]),
        "kv_cache": (memory["kv_cache_bytes"], buffers["KV"]),
        "compute": (memory["compute_buffer_bytes"], buffers["compute"] + buffers.get("output", 0)),
        "total": (memory["total_bytes"], runner["VmHWM"] + serve["VmRSS"]),
    }
    print(f"\n{ref} at num_ctx {num_ctx}: " + ", ".join(
        f"{term} predicted {p / 2**20:.2f} MiB measured {m / 2**20:.2f} MiB ({(p - m) / m:+.1%})"
        for term, (p, m) in figures.items()))
    return figures


def assert_within_15_pct(figures: dict) -> None:
    for term, (predicted, actual) in figures.items():
        assert abs(predicted - actual) <= 0.15 * actual, (term, figures)
    # the total is what the pod can reach: at most 1 % below what the processes used (the 1 GiB model's
    # compute buffer comes out 2 MiB short), which the preflight's headroom covers
    assert figures["total"][0] >= 0.99 * figures["total"][1], figures


@pytest.mark.parametrize("name", ["tiny", "large"])
def test_predicted_memory_against_the_loaded_model(module_runner, server, models, name):
    _files, published = models
    assert_within_15_pct(predicted_and_measured(module_runner, server, published[name].ref, num_ctx=2048))


@pytest.mark.slow
def test_predicted_memory_of_a_1_gib_quantised_model(module_runner, server, registry, tmp_path):
    """A model of real width (2048-wide layers, Q4_K_M, 1 GiB): about 4 minutes on 2 cores, most of it
    the 256-token prompt (the smallest context llama.cpp does not pad)."""
    path = tmp_path / "q4km-1gib.gguf"
    make_quantised_model(path, seed=1024, size_mb=1024)
    published = registry.push_model(path, name="itest/info-1gib", tag="v1")
    path.unlink()
    server.cli("pull", "--insecure", published.ref, timeout=1800)
    try:
        assert_within_15_pct(predicted_and_measured(module_runner, server, published.ref, num_ctx=256))
    finally:
        server.cli("rm", published.ref)


PLAYBOOK = """\
- name: Size a model from its header, as a role does
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the header
      aiplatform.ollama.ollama_model_info:
        name: "{{ model_ref }}"
        insecure: true
        num_ctx: 2048
      register: info

    - name: Keep the module's sizing and the filter's, for the same and for other settings
      ansible.builtin.copy:
        content: "{{ {'module': info.memory,
                      'same': info | aiplatform.ollama.model_memory(num_ctx=2048),
                      'parallel': info | aiplatform.ollama.model_memory(num_ctx=2048, num_parallel=2,
                                                                         kv_cache_type='q8_0')} | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
"""


def test_playbook_sizes_with_the_module_and_the_filter(ansible_env, models, tmp_path):
    _files, published = models
    playbook = tmp_path / "size.yml"
    playbook.write_text(PLAYBOOK)
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
         "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"model_ref={published['large'].ref}",
         "-e", f"result_file={tmp_path / 'result.json'}"],
        env=ansible_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["same"] == data["module"]
    # two sequences of q8_0 cache: 2 layers x 8 heads x 256 elements x 34/32 bytes x 2048 x 2
    assert data["parallel"]["kv_cache_bytes"] == 2 * 8 * 256 * 34 // 32 * 2048 * 2
    assert data["parallel"]["weights_bytes"] == data["module"]["weights_bytes"]
