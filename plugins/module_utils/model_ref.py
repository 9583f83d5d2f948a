# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ollama model references: parsed, validated and normalised once, used by every client.

`qwen2.5` means `registry.ollama.ai/library/qwen2.5:latest`; `host:port/ns/model:tag` is kept as it is.
The character rules are those the Ollama server applies, so a name accepted here is one it accepts.
"""

from __future__ import annotations

import re

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError

DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

# Ollama: every part starts with a letter, digit or underscore; '-' and '_' anywhere; '.' not in a
# namespace; ':' only in the host (a port). Model, namespace and tag up to 80 characters.
_PART = {
    "host": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$"),
    "namespace": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$"),
    "model": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$"),
    "tag": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$"),
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_EXAMPLES = "e.g. 'qwen2.5', 'qwen2.5:72b', 'myteam/model:v1' or 'registry.example.com:5000/library/model:tag'"


class ModelRefError(InputError):
    """A model reference that the Ollama server would reject; the message says why and how to fix it."""


class ModelRef:
    """A fully qualified model reference: registry host, namespace, model and tag."""

    __slots__ = ("host", "namespace", "model", "tag")

    def __init__(self, host, namespace, model, tag):
        self.host = host
        self.namespace = namespace
        self.model = model
        self.tag = tag

    @classmethod
    def parse(cls, name):
        """Parse and validate `name`; raise ModelRefError naming the bad part."""
        if not isinstance(name, str) or not name.strip():
            raise ModelRefError(f"model name is empty: give a model reference, {_EXAMPLES}")
        # Roles pass the name on as written, and a chart pastes it into a shell script: a newline (or any
        # other control character) anywhere, even around the name, would start a command of its own there.
        if _CONTROL.search(name):
            raise ModelRefError(
                f"model name {name!r} contains a newline, tab or other control character: write the name alone "
                f"({_EXAMPLES})"
            )
        text = name.strip()
        if "://" in text:
            raise ModelRefError(
                f"model name {name!r} contains a URL scheme: drop it and set insecure=true for a plain-HTTP registry"
            )
        if "@" in text:
            raise ModelRefError(
                f"model name {name!r} pins a digest with '@', which Ollama pulls do not accept: "
                "use a tag, and expected_digest where a module offers it"
            )
        tag = DEFAULT_TAG
        # a ':' after the last '/' separates the tag; one before it belongs to host:port
        if text.rfind(":") > text.rfind("/"):
            text, tag = text.rsplit(":", 1)
        parts = text.split("/")
        if len(parts) > 3:
            raise ModelRefError(
                f"model name {name!r} has {len(parts)} path segments; at most host/namespace/model is allowed "
                f"({_EXAMPLES})"
            )
        host, namespace = DEFAULT_REGISTRY, DEFAULT_NAMESPACE
        if len(parts) == 3:
            host, namespace, model = parts
        elif len(parts) == 2:
            namespace, model = parts
        else:
            model = parts[0]
        # fullmatch: with match, '$' also matches before a final newline and lets 'x\n' through as a part
        for kind, value in (("host", host), ("namespace", namespace), ("model", model), ("tag", tag)):
            if not _PART[kind].fullmatch(value):
                raise ModelRefError(
                    "model name {!r} has an invalid {} {!r}: parts start with a letter, digit or '_' and contain "
                    "only letters, digits, '_', '-'{} ({})".format(
                        name, kind, value, {"host": ", '.' and ':'", "namespace": ""}.get(kind, " and '.'"), _EXAMPLES
                    )
                )
        return cls(host.lower(), namespace, model, tag)

    @property
    def repository(self):
        """The registry v2 repository path, `namespace/model`."""
        return f"{self.namespace}/{self.model}"

    @property
    def full(self):
        """`host/namespace/model:tag`, the normalised form."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def short(self):
        """The name as Ollama lists it: the default registry and `library` namespace left out."""
        if self.host != DEFAULT_REGISTRY:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    def key(self):
        """Ollama compares names without regard to case."""
        return self.full.lower()

    def matches(self, other_name):
        """True when `other_name` (as the server lists it) names the same model."""
        try:
            return ModelRef.parse(other_name).key() == self.key()
        except ModelRefError:
            return False

    def registry_url(self, insecure=False):
        return "{}://{}".format("http" if insecure else "https", self.host)

    def __str__(self):
        return self.full

    def __repr__(self):
        return f"ModelRef({self.full!r})"


def parse_models(names, option, login=False, verb="seed"):
    """`names` as ModelRefs, each once (Ollama compares names without regard to case); ModelRefError for a
    bad or missing one. With a registry login they must all be of one registry: the credentials are for one."""
    refs = []
    for name in names or []:
        ref = ModelRef.parse(name)
        if all(ref.key() != other.key() for other in refs):
            refs.append(ref)
    if not refs:
        raise ModelRefError(f"{option} is empty: name at least one model, e.g. qwen2.5:72b")
    hosts = sorted(set(ref.host for ref in refs))
    if login and len(hosts) > 1:
        raise ModelRefError(
            f"registry_username and registry_password are for one registry, but {option} lists models of "
            f"{', '.join(hosts)}: {verb} the models of each registry in a task of its own"
        )
    return refs


def normalize(name):
    """`qwen2.5` -> `registry.ollama.ai/library/qwen2.5:latest`; raises ModelRefError."""
    return ModelRef.parse(name).full


def served_name(name, num_thread):
    """The model clients are served when threads are aligned: `qwen2.5:72b` with 4 threads is
    `qwen2.5:72b-t4`, a model derived FROM the base with PARAMETER num_thread 4 (the chart's
    init container creates it under this name). Raises ModelRefError for a bad name."""
    if isinstance(num_thread, bool) or not isinstance(num_thread, int) or num_thread < 1:
        raise ModelRefError(f"num_thread {num_thread!r} must be a whole number of threads, at least 1")
    ref = ModelRef.parse(name)
    served = ModelRef.parse(f"{ref.short}-t{num_thread}")  # a tag grown past Ollama's limit is refused here
    return served.short
