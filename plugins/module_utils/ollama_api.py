# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small client for the Ollama server REST API (0.18.x), on Ansible's URL layer.

Ansible's URL layer brings proxies from the environment, CA bundles and certificate checks
without any Python dependency on the target. Streamed endpoints (pull, generate) are read one
JSON line at a time, so a multi-GB pull costs the same memory as a small one.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import ConnectionError as UrlConnectionError

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_http import (
    HttpTransport,
    check_headers,
    untrusted_certificate_fix,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import Transfer

DEFAULT_HOST = "http://127.0.0.1:11434"

# Options every Ollama module shares; documented in the aiplatform.ollama.ollama doc fragment.
OLLAMA_COMMON_ARGS = dict(
    host=dict(type="str", default=DEFAULT_HOST),
    timeout=dict(type="float", default=30),
    validate_certs=dict(type="bool", default=True),
    ca_path=dict(type="path"),
    # the values of its credential-bearing entries are masked in all output (module_utils/header_secrets.py,
    # HeaderRedactingModule), the others shown
    headers=dict(type="dict", default={}),
    # a gateway's token: kept out of results, diffs and -vvv output
    api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["OLLAMA_API_KEY"])),
)


class OllamaError(CollectionError):
    """A failed exchange with the server. `kind` is one of unreachable, timeout, http, stream, protocol."""

    def __init__(self, msg, kind="http", status=None, body=None, url=None):
        super().__init__(msg, kind=kind, url=url, status=status, body=body)


def validate_host(host):
    """Return the server base URL without a trailing slash, or raise ValueError saying what is wrong."""
    text = (host or "").strip()
    hint = f"expected http(s)://HOST[:PORT][/PATH], e.g. {DEFAULT_HOST}"
    if not text:
        raise ValueError(f"host is empty: {hint}")
    if any(c.isspace() for c in text):
        raise ValueError(f"host {host!r} is not a URL (it contains whitespace): {hint}")
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"host {host!r} is not an http(s) URL: {hint}")
    if not parsed.hostname:
        raise ValueError(f"host {host!r} names no server: {hint}")
    try:
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise ValueError("port out of range")
    except ValueError:
        raise ValueError(f"host {host!r} has an invalid port: {hint}") from None
    if parsed.query or parsed.fragment:
        raise ValueError(f"host {host!r} carries a query or fragment, which the API does not take: {hint}")
    return text.rstrip("/")


def _reason(err):
    reason = getattr(err, "reason", None) or err
    return str(reason).strip() or type(err).__name__


def error_text(body):
    """The `error` of an Ollama answer ({"error": "..."} or OpenAI's {"error": {"message": ...}})."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return (body or "").strip()[:500]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    return str(data)[:500]


class OllamaClient:
    """One Ollama server. Methods return decoded JSON; streamed ones yield one object per line."""

    def __init__(self, host=DEFAULT_HOST, timeout=30, validate_certs=True, ca_path=None, headers=None, api_key=None):
        self.base_url = validate_host(host)
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.http = HttpTransport(validate_certs=validate_certs, ca_path=ca_path)
        check_headers(headers)
        self.headers = dict(headers or {})
        if api_key:
            if any(name.lower() == "authorization" for name in self.headers):
                raise ValueError("api_key and an Authorization header in headers both set the token: keep api_key "
                                 "(never logged) and remove Authorization from headers")
            self.headers["Authorization"] = f"Bearer {api_key}"

    @classmethod
    def from_params(cls, params):
        return cls(
            host=params["host"],
            timeout=params["timeout"],
            validate_certs=params["validate_certs"],
            ca_path=params.get("ca_path"),
            headers=params.get("headers"),
            api_key=params.get("api_key"),
        )

    # -- transport ----------------------------------------------------------------------------

    def _open(self, method, path, body=None, timeout=None, what=None):
        url = self.base_url + path
        what = what or f"{method} {path}"
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            return self.http.open(method, url, data=data, headers=headers, timeout=timeout or self.timeout)
        except HTTPError as err:
            try:
                raw = err.read()
            except Exception:
                raw = b""
            raise OllamaError(
                f"{what} on {self.base_url} answered HTTP {err.code}: {error_text(raw)}",
                kind="http",
                status=err.code,
                body=raw,
                url=url,
            ) from None
        except (socket.timeout, TimeoutError) as err:
            raise OllamaError(
                f"{what} on {self.base_url} timed out after {timeout or self.timeout}s ({_reason(err)})",
                kind="timeout",
                url=url,
            ) from err
        except (URLError, UrlConnectionError, OSError) as err:
            if isinstance(getattr(err, "reason", None), socket.timeout):
                raise OllamaError(
                    f"{what} on {self.base_url} timed out after {timeout or self.timeout}s", kind="timeout", url=url
                ) from err
            fix = untrusted_certificate_fix(err) or (
                "check `host` and that `ollama serve` is running and listening there"
            )
            raise OllamaError(
                f"cannot reach the Ollama server at {self.base_url} ({_reason(err)}): {fix}",
                kind="unreachable",
                url=url,
            ) from err

    def request(self, method, path, body=None, timeout=None, what=None):
        resp = self._open(method, path, body, timeout, what)
        try:
            raw = resp.read()
        except (socket.timeout, TimeoutError, OSError) as err:
            raise OllamaError(
                f"reading the answer of {path} from {self.base_url} failed: {_reason(err)}", kind="timeout",
                url=self.base_url + path,
            ) from err
        finally:
            resp.close()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise OllamaError(
                f"{path} on {self.base_url} did not answer JSON (is this an Ollama server, or a proxy in between?): "
                f"{raw[:200]!r}",
                kind="protocol",
                body=raw,
                url=self.base_url + path,
            ) from None

    def stream(self, method, path, body, timeout=None, what=None):
        """Yield one decoded object per line; an `error` line raises OllamaError(kind='stream')."""
        resp = self._open(method, path, body, timeout, what)
        url = self.base_url + path
        try:
            while True:
                try:
                    line = resp.readline()
                except (socket.timeout, TimeoutError) as err:
                    raise OllamaError(
                        f"{what or path} on {self.base_url} sent nothing for {timeout or self.timeout}s "
                        f"({_reason(err)})",
                        kind="timeout",
                        url=url,
                    ) from err
                except OSError as err:
                    raise OllamaError(
                        f"{what or path} on {self.base_url}: the connection broke mid-stream ({_reason(err)})",
                        kind="unreachable",
                        url=url,
                    ) from err
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    raise OllamaError(
                        f"{what or path} on {self.base_url} streamed a line that is not JSON: {line[:200]!r}",
                        kind="protocol",
                        url=url,
                    ) from None
                if isinstance(event, dict) and event.get("error"):
                    raise OllamaError(error_text(line), kind="stream", body=line, url=url)
                yield event
        finally:
            resp.close()

    # -- endpoints ----------------------------------------------------------------------------

    def banner(self):
        """What `GET /` answers ("Ollama is running"): proves the port serves HTTP, nothing about inference."""
        resp = self._open("GET", "/", what="GET /")
        try:
            return resp.read(200).decode("utf-8", "replace").strip()
        finally:
            resp.close()

    def version(self):
        return self.request("GET", "/api/version").get("version")

    def models(self):
        """Local models, as `/api/tags` lists them."""
        return self.request("GET", "/api/tags").get("models") or []

    def running(self):
        """Models loaded in memory (`/api/ps`)."""
        return self.request("GET", "/api/ps").get("models") or []

    def find_model(self, ref, models=None):
        """The `/api/tags` entry for a ModelRef, or None."""
        for entry in self.models() if models is None else models:
            if ref.matches(entry.get("model") or entry.get("name") or ""):
                return entry
        return None

    def blob_exists(self, digest):
        """Whether the server's store holds a blob (`HEAD /api/blobs/:digest`)."""
        try:
            self._open("HEAD", f"/api/blobs/{digest}").close()
            return True
        except OllamaError as err:
            if err.status == 404:
                return False
            raise

    def show(self, model):
        return self.request("POST", "/api/show", {"model": model})

    def delete(self, model):
        return self.request("DELETE", "/api/delete", {"model": model})

    def pull(self, model, insecure=False, timeout=None):
        return self.stream(
            "POST",
            "/api/pull",
            {"model": model, "insecure": bool(insecure), "stream": True},
            timeout=timeout,
            what=f"pull of {model}",
        )

    def generate(self, model, prompt, options=None, keep_alive=None, timeout=None):
        body = {"model": model, "prompt": prompt, "stream": True, "options": options or {}}
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        return self.stream("POST", "/api/generate", body, timeout=timeout, what=f"generate with {model}")

    def chat(self, model, messages, options=None, keep_alive=None, timeout=None):
        """Stream `/api/chat`: the native chat endpoint, which the Agent Gateway forwards as it is."""
        body = {"model": model, "messages": messages, "stream": True, "options": options or {}}
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        return self.stream("POST", "/api/chat", body, timeout=timeout, what=f"chat with {model}")

    def openai_chat(self, model, content, max_tokens=8, seed=0, timeout=None):
        body = {
            "model": model,
            "messages": [{"role": "user", "content": content}],
            "stream": False,
            "temperature": 0,
            "seed": seed,
            "max_tokens": max_tokens,
        }
        return self.request(
            "POST", "/v1/chat/completions", body, timeout=timeout, what=f"OpenAI chat completion with {model}"
        )


def _generated_text(event):
    """(text, other output) of one streamed line: /api/generate puts text and thinking at the top level,
    /api/chat puts them, and tool calls, under `message`."""
    message = event.get("message")
    if isinstance(message, dict):
        return message.get("content") or "", message.get("thinking") or message.get("tool_calls")
    return event.get("response") or "", event.get("thinking")


class TimedStream:
    """One streamed generation (/api/generate or /api/chat) read to its end, timed as the client sees it.

    `first_token_seconds` runs from the first read, which is when the generator sends its request, to
    the first line carrying generated output (text, thinking or a tool call); `seconds` to the final
    line; `final` is that `done` line, with the server's counts (`eval_count`) and durations.
    """

    def __init__(self, events, clock=time.monotonic):
        started = clock()
        first = None
        text = []
        final = {}
        for event in events:
            piece, other = _generated_text(event)
            if first is None and (piece or other):
                first = clock() - started
            text.append(piece)
            if event.get("done"):
                final = event
        if not final:
            raise OllamaError("the generation stream ended without a final (done) line", kind="protocol")
        self.seconds = clock() - started
        self.first_token_seconds = self.seconds if first is None else first
        self.final = final
        self.text = "".join(text)

    @property
    def eval_count(self):
        """Tokens generated, as the server counted them."""
        return int(self.final.get("eval_count") or 0)


class PullProgress(Transfer):
    """Totals over the layers of one `/api/pull` stream: percentage, bytes moved, rate and ETA.

    With the manifest's layers and those the server already holds (`layers`, `present`), the totals
    are exact from the start. Without them, a layer that arrives complete in its first event counts
    as already present.
    """

    def __init__(self, layers=None, present=(), clock=time.monotonic, window=10.0):
        super().__init__(clock=clock, window=window)
        self.layers = {}  # digest -> [bytes there before the pull, completed, total]
        for digest, size in (layers or {}).items():
            done = int(size) if digest in present else 0
            self.layers[digest] = [done, done, int(size)]

    def feed(self, event):
        self.status = event.get("status") or self.status
        digest = event.get("digest")
        if digest and event.get("total"):
            total = int(event["total"])
            completed = int(event.get("completed") or 0)
            layer = self.layers.get(digest)
            if layer is None:
                self.layers[digest] = [completed if completed >= total else 0, completed, total]
            else:
                layer[1], layer[2] = max(layer[1], completed), total
        self.sample()

    def finish(self):
        """After `success` every layer is in the store, including those too quick to report progress."""
        for layer in self.layers.values():
            layer[1] = layer[2]

    @property
    def total(self):
        return sum(layer[2] for layer in self.layers.values())

    @property
    def completed(self):
        return sum(layer[1] for layer in self.layers.values())

    @property
    def transferred(self):
        return sum(max(0, layer[1] - layer[0]) for layer in self.layers.values())
