#!/usr/bin/python
# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_health
short_description: Probe an Ollama server level by level, up to real inference
version_added: 1.0.0
description:
  - Checks an Ollama server in levels, each building on the one before, and stops at the first that fails.
  - V(reachable) the server answers HTTP; V(version) C(/api/version) answers as Ollama does; V(model) the
    model is in the store (optionally with O(expected_digest)); V(generate) the model loads and generates
    with a fixed prompt, C(temperature=0) and a fixed O(seed); V(openai) the OpenAI-compatible
    C(/v1/chat/completions) answers with tokens.
  - Reports load time, time to first token and prompt and generation rates, and which level failed and why.
  - C(GET /) answering "Ollama is running" proves nothing about inference; use at least V(generate) after
    a deployment.
author:
  - AI Platform team (@aiplatform)
extends_documentation_fragment:
  - aiplatform.ollama.ollama
  - aiplatform.ollama.attributes
attributes:
  check_mode:
    support: partial
    details: >-
      The probe runs as in a normal run: it generates, which changes nothing persistent but may load the
      model into the server's memory and unload another. It reports no change either way.
  diff_mode:
    support: none
    details: Nothing changes, so there is nothing to compare.
  platform:
    support: full
    details: Runs on any host that reaches the Ollama server, directly or through a gateway.
options:
  name:
    description:
      - The model to probe. Needed from O(level=model) on.
    type: str
    aliases: [model]
  level:
    description:
      - The highest level to check. Defaults to V(openai) when O(name) is given, else V(version).
    type: str
    choices: [reachable, version, model, generate, openai]
  expected_digest:
    description:
      - Manifest digest the model must have (as M(aiplatform.ollama.ollama_model) or M(aiplatform.ollama.ollama_info)
        report it, with or without the C(sha256:) prefix).
    type: str
  prompt:
    description:
      - The fixed prompt of the generation levels.
    type: str
    default: Reply with the single word ok.
  num_predict:
    description:
      - Tokens to generate; small keeps the probe quick.
    type: int
    default: 16
  seed:
    description:
      - Sampling seed, so the probe is repeatable.
    type: int
    default: 42
  load_timeout:
    description:
      - Seconds one generation may take, including loading the model into memory when it is cold.
    type: float
    default: 600
  retries:
    description:
      - Further attempts of a generation level that failed for a reason that can pass (timeout, server busy,
        model still loading, connection reset). A missing model is not retried.
    type: int
    default: 2
  retry_delay:
    description:
      - Seconds between two attempts.
    type: float
    default: 5
  min_eval_tokens_per_s:
    description:
      - Fail when generation is slower than this many tokens per second.
    type: float
  max_load_seconds:
    description:
      - Fail when loading the model took longer than this.
    type: float
  fail_on_unhealthy:
    description:
      - Fail the task when a level fails. With V(false) the task succeeds and reports C(healthy=false),
        for a play that diagnoses instead of stopping.
    type: bool
    default: true
seealso:
  - module: aiplatform.ollama.ollama_model
  - module: aiplatform.ollama.ollama_info
"""

EXAMPLES = r"""
- name: The server answers and the model generates at a usable speed
  aiplatform.ollama.ollama_health:
    host: http://ollama.ollama.svc.cluster.local:11434
    name: qwen2.5:72b
    level: generate
    min_eval_tokens_per_s: 1.0
    max_load_seconds: 300

- name: Through the Agent Gateway, up to the OpenAI API kagent uses, without failing the play
  aiplatform.ollama.ollama_health:
    host: http://agentgateway-proxy.agentgateway-system.svc.cluster.local:9080
    name: qwen2.5:72b
    fail_on_unhealthy: false
  register: probe

- name: Say which level broke
  ansible.builtin.debug:
    msg: "{{ probe.failed_level }}: {{ probe.reason }}"
  when: not probe.healthy

- name: Just reachable and a real Ollama
  aiplatform.ollama.ollama_health:
    level: version
"""

RETURN = r"""
healthy:
  description: Whether every level up to O(level) passed.
  returned: always
  type: bool
passed:
  description: The levels that passed, in order.
  returned: always
  type: list
  elements: str
  sample: [reachable, version, model, generate]
failed_level:
  description: The level that failed, or null.
  returned: always
  type: str
  sample: model
reason:
  description: Why that level failed, with what was measured or answered.
  returned: always
  type: str
version:
  description: Version of the server.
  returned: when the version level ran
  type: str
  sample: 0.18.3
digest:
  description: Manifest digest of the model on the server.
  returned: when the model level passed
  type: str
load_seconds:
  description: Seconds the server spent loading the model for the probe (near 0 when it was loaded).
  returned: when the generate level ran
  type: float
time_to_first_token_seconds:
  description: Seconds from sending the request to the first generated token, as the client saw it.
  returned: when the generate level ran
  type: float
prompt_tokens:
  description: Tokens of the prompt the model evaluated.
  returned: when the generate level ran
  type: int
prompt_tokens_per_s:
  description: Prompt evaluation rate.
  returned: when the generate level ran
  type: float
eval_tokens:
  description: Tokens generated.
  returned: when the generate level ran
  type: int
eval_tokens_per_s:
  description: Generation rate.
  returned: when the generate level ran
  type: float
response:
  description: The generated text (nonsense is fine; tokens are what is checked).
  returned: when the generate level ran
  type: str
attempts:
  description: Generation attempts made.
  returned: when the generate level ran
  type: int
openai_completion_tokens:
  description: Tokens the OpenAI-compatible endpoint generated.
  returned: when the openai level ran
  type: int
openai_seconds:
  description: Duration of the OpenAI-compatible request.
  returned: when the openai level ran
  type: float
levels:
  description: Per level, whether it passed, how long it took and what was seen.
  returned: always
  type: dict
error:
  description: Why it failed - C(kind); where known C(url) (no query), C(status), a C(body) excerpt, the subject.
  returned: failure
  type: dict
  sample: {kind: unreachable, url: "http://ollama.ollama.svc.cluster.local:11434/api/version"}
"""

import time  # noqa: E402

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError, InputError  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.header_secrets import HeaderRedactingModule  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef  # noqa: E402
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import (  # noqa: E402
    OLLAMA_COMMON_ARGS,
    OllamaClient,
    OllamaError,
    TimedStream,
)

LEVELS = ["reachable", "version", "model", "generate", "openai"]
_TRANSIENT = ("busy", "loading", "timed out", "timeout", "connection reset", "eof", "try again", "unavailable")


class LevelFailed(Exception):
    pass


def _rate(count, nanoseconds):
    return round(count / (nanoseconds / 1e9), 2) if count and nanoseconds else 0.0


def _hex(digest):
    return (digest or "").split(":")[-1].strip().lower()


class Probe:
    def __init__(self, module, client, ref):
        self.module = module
        self.client = client
        self.ref = ref
        self.params = module.params
        self.result = dict(changed=False, healthy=False, passed=[], failed_level=None, reason="", levels={})

    def run(self, top):
        for level in LEVELS[: LEVELS.index(top) + 1]:
            started = time.monotonic()
            try:
                detail = getattr(self, "check_" + level)()
            except LevelFailed as err:
                self.result["levels"][level] = dict(
                    ok=False, seconds=round(time.monotonic() - started, 3), detail=str(err)
                )
                self.result.update(failed_level=level, reason=str(err))
                return self.result
            self.result["levels"][level] = dict(ok=True, seconds=round(time.monotonic() - started, 3), detail=detail)
            self.result["passed"].append(level)
        self.result["healthy"] = True
        return self.result

    def check_reachable(self):
        try:
            body = self.client.banner()
        except OllamaError as err:
            raise LevelFailed(str(err)) from err
        return body

    def check_version(self):
        try:
            version = self.client.version()
        except OllamaError as err:
            raise LevelFailed(f"GET /api/version: {err}") from err
        if not version:
            raise LevelFailed(
                f"{self.client.base_url}/api/version answered without a version: the server (or a proxy in front of "
                "it) is not an Ollama API"
            )
        self.result["version"] = version
        return version

    def check_model(self):
        try:
            entry = self.client.find_model(self.ref)
        except OllamaError as err:
            raise LevelFailed(f"listing models: {err}") from err
        if not entry:
            raise LevelFailed(
                f"model {self.ref.short} is not on the server at {self.client.base_url}: pull it "
                "(aiplatform.ollama.ollama_model) or check the name"
            )
        digest = "sha256:" + _hex(entry.get("digest"))
        self.result.update(digest=digest, size=int(entry.get("size") or 0))
        expected = self.params["expected_digest"]
        if expected and _hex(expected) != _hex(digest):
            raise LevelFailed(
                f"model {self.ref.short} on {self.client.base_url} has digest {digest}, expected {expected}: pull it "
                "again with state=latest or fix expected_digest"
            )
        return digest

    def _generate_once(self):
        options = {"temperature": 0, "seed": self.params["seed"], "num_predict": self.params["num_predict"]}
        events = self.client.generate(
            self.ref.short, self.params["prompt"], options=options, timeout=self.params["load_timeout"]
        )
        return TimedStream(events)

    def check_generate(self):
        attempts = 0
        while True:
            attempts += 1
            try:
                stream = self._generate_once()
                break
            except OllamaError as err:
                transient = (
                    err.kind in ("timeout", "unreachable")
                    or (err.status or 0) >= 500
                    or any(s in err.msg.lower() for s in _TRANSIENT)
                )
                if (
                    err.status == 404
                    or "not found" in err.msg.lower()
                    or not transient
                    or attempts > self.params["retries"]
                ):
                    raise LevelFailed(f"generating with {self.ref.short} (attempt {attempts}): {err}") from err
                time.sleep(self.params["retry_delay"])
        final = stream.final
        eval_count = stream.eval_count
        load = round((final.get("load_duration") or 0) / 1e9, 3)
        self.result.update(
            attempts=attempts,
            response=stream.text,
            load_seconds=load,
            time_to_first_token_seconds=round(stream.first_token_seconds, 3),
            prompt_tokens=int(final.get("prompt_eval_count") or 0),
            prompt_tokens_per_s=_rate(final.get("prompt_eval_count"), final.get("prompt_eval_duration")),
            eval_tokens=eval_count,
            eval_tokens_per_s=_rate(eval_count, final.get("eval_duration")),
            total_seconds=round((final.get("total_duration") or 0) / 1e9, 3),
        )
        if eval_count < 1:
            raise LevelFailed(
                "{} loaded but generated no tokens (done_reason {!r})".format(self.ref.short, final.get("done_reason"))
            )
        minimum = self.params["min_eval_tokens_per_s"]
        if minimum is not None and self.result["eval_tokens_per_s"] < minimum:
            raise LevelFailed(
                "{} generates {:.2f} tokens/s, below min_eval_tokens_per_s {:.2f}: check num_thread "
                "against the CPU limit and the memory bandwidth of the node".format(
                    self.ref.short, self.result["eval_tokens_per_s"], minimum
                )
            )
        maximum = self.params["max_load_seconds"]
        if maximum is not None and load > maximum:
            raise LevelFailed(
                f"{self.ref.short} took {load:.1f} s to load, above max_load_seconds {maximum:.1f}: check the "
                "storage the model is read from and the memory limit"
            )
        return f"{eval_count} tokens at {self.result['eval_tokens_per_s']:.2f} tokens/s"

    def check_openai(self):
        started = time.monotonic()
        try:
            answer = self.client.openai_chat(
                self.ref.short,
                self.params["prompt"],
                max_tokens=self.params["num_predict"],
                seed=self.params["seed"],
                timeout=self.params["load_timeout"],
            )
        except OllamaError as err:
            raise LevelFailed(f"POST /v1/chat/completions: {err}") from err
        seconds = round(time.monotonic() - started, 3)
        choices = answer.get("choices") or []
        tokens = int((answer.get("usage") or {}).get("completion_tokens") or 0)
        self.result.update(openai_completion_tokens=tokens, openai_seconds=seconds)
        if not choices or tokens < 1:
            raise LevelFailed(f"/v1/chat/completions answered without generated tokens: {answer!r}")
        return f"{tokens} tokens in {seconds:.2f} s"


def main():
    argument_spec = dict(OLLAMA_COMMON_ARGS)
    argument_spec.update(
        name=dict(type="str", aliases=["model"]),
        level=dict(type="str", choices=LEVELS),
        expected_digest=dict(type="str"),
        prompt=dict(type="str", default="Reply with the single word ok."),
        num_predict=dict(type="int", default=16),
        seed=dict(type="int", default=42),
        load_timeout=dict(type="float", default=600),
        retries=dict(type="int", default=2),
        retry_delay=dict(type="float", default=5),
        min_eval_tokens_per_s=dict(type="float", no_log=False),
        max_load_seconds=dict(type="float"),
        fail_on_unhealthy=dict(type="bool", default=True),
    )
    module = HeaderRedactingModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        result = probe(module, params)
    except CollectionError as err:
        module.fail_json(msg=str(err), changed=False, error=err.details())
    if not result["healthy"] and params["fail_on_unhealthy"]:
        module.fail_json(
            msg="Ollama at {} failed the {} check: {}".format(result["host"], result["failed_level"], result["reason"]),
            **result,
        )
    module.exit_json(**result)


def probe(module, params):
    """Run the levels up to the one asked for; InputError for options that cannot work together."""
    top = params["level"] or ("openai" if params["name"] else "version")
    ref = None
    if LEVELS.index(top) >= LEVELS.index("model"):
        if not params["name"]:
            raise InputError(f"level {top!r} checks a model: set name (e.g. name: qwen2.5:72b) or a lower level")
        ref = ModelRef.parse(params["name"])
    try:
        client = OllamaClient.from_params(params)
    except ValueError as err:
        raise InputError(str(err)) from err
    result = Probe(module, client, ref).run(top)
    if ref is not None:
        result["model"] = ref.full
    result["host"] = client.base_url
    return result


if __name__ == "__main__":
    main()
