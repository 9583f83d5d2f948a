"""Server client pieces that need no server: URL validation, error texts, progress arithmetic."""

from __future__ import annotations

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import (
    PullProgress,
    error_text,
    validate_host,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import (
    human_bytes,
    human_seconds,
    progress_line,
)


@pytest.mark.parametrize(
    "host, base",
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
        ("https://gateway.example.com/ollama/", "https://gateway.example.com/ollama"),
        ("http://[::1]:11434", "http://[::1]:11434"),
    ],
)
def test_valid_hosts(host, base):
    assert validate_host(host) == base


@pytest.mark.parametrize(
    "host, says",
    [
        ("not a url", "contains whitespace"),
        ("", "host is empty"),
        ("127.0.0.1:11434", "not an http(s) URL"),
        ("ftp://127.0.0.1", "not an http(s) URL"),
        ("http://", "names no server"),
        ("http://127.0.0.1:99999", "invalid port"),
        ("http://127.0.0.1:11434/?x=1", "query or fragment"),
    ],
)
def test_invalid_hosts_say_what_is_expected(host, says):
    with pytest.raises(ValueError) as err:
        validate_host(host)
    assert says in str(err.value) and "http://127.0.0.1:11434" in str(err.value)


def test_error_text_reads_ollama_and_openai_errors():
    assert error_text(b'{"error":"model \'x\' not found"}') == "model 'x' not found"
    assert error_text('{"error":{"message":"bad","type":"invalid_request_error"}}') == "bad"
    assert error_text(b"<html>gateway</html>") == "<html>gateway</html>"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_counts_present_layers_as_not_transferred():
    clock = Clock()
    progress = PullProgress(layers={"sha256:a": 1000, "sha256:b": 10}, present={"sha256:b"}, clock=clock)
    assert progress.total == 1010 and progress.completed == 10 and progress.transferred == 0
    clock.now += 1
    progress.feed({"status": "pulling a", "digest": "sha256:a", "total": 1000, "completed": 400})
    clock.now += 1
    progress.feed({"status": "pulling a", "digest": "sha256:a", "total": 1000, "completed": 600})
    assert progress.transferred == 600
    assert progress.rate == pytest.approx(200.0)
    assert progress.eta == pytest.approx((1010 - 610) / 200.0)
    snap = progress.snapshot("m:t")
    assert snap["percent"] == pytest.approx(60.4) and snap["total"] == 1010
    progress.feed({"status": "success"})
    progress.finish()
    assert progress.transferred == 1000 and progress.completed == 1010 and progress.eta == 0


def test_progress_without_manifest_treats_complete_first_event_as_cache_hit():
    progress = PullProgress(clock=Clock())
    progress.feed({"status": "pulling a", "digest": "sha256:a", "total": 50, "completed": 50})
    progress.feed({"status": "pulling b", "digest": "sha256:b", "total": 100, "completed": 30})
    progress.feed({"status": "pulling b", "digest": "sha256:b", "total": 100, "completed": 100})
    assert progress.transferred == 100 and progress.total == 150


def test_progress_line_has_percent_bytes_rate_eta():
    line = progress_line({"model": "qwen2.5:72b", "status": "pulling 6e4c38e1172f", "completed": 3 << 30,
                          "total": 47 << 30, "percent": 6.4, "bytes_per_second": 100 << 20, "eta_seconds": 451})
    assert line == "qwen2.5:72b:   6.4% 3.0 GiB / 47.0 GiB at 100.0 MiB/s, ETA 7m31s (pulling 6e4c38e1172f)"
    assert progress_line({"model": "m", "status": "pulling manifest", "total": 0}) == "m: pulling manifest"


def test_human_units():
    assert human_bytes(512) == "512 B" and human_bytes(1536) == "1.5 KiB"
    assert human_seconds(None) == "?" and human_seconds(59) == "59s" and human_seconds(7260) == "2h01m"
