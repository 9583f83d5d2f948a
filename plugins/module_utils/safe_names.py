# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Names and paths the roles write into Kubernetes objects, scripts and a GitOps tree, checked once.

A Kubernetes object name here must be a DNS label (RFC 1123: what a namespace needs, and stricter
than what a claim or Job allows), so it can never carry `$(...)`, quotes, `${...}`, a newline or a
slash into a manifest, a script or a path. A path inside the GitOps repository is relative, made of
plain segments, and never climbs out of the repository. A model a GitOps file names is a model
reference, or one Flux placeholder alone that cluster-vars fills in.
"""

from __future__ import annotations

import re

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, ModelRefError

# used with fullmatch: with match, '$' also matches before a final newline and would let "ollama\n" through
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
# Flux's postBuild substitution variable: ${NAME}; anything around it would be pasted in as written
_PLACEHOLDER = re.compile(r"\$\{[A-Z0-9_]+\}")


class NameError_(InputError):  # noqa: N801 (NameError is a builtin)
    """A name or path that cannot be used; the message names the variable, the value and the rule."""


def _label(variable):
    return f"{variable} is" if variable else "the value is"


def dns_label(value, variable=""):
    """`value` when it is a DNS label of at most 63 characters, else NameError_."""
    text = value if isinstance(value, str) else None
    if text is None or len(text) > 63 or not _DNS_LABEL.fullmatch(text):
        raise NameError_(
            f"{_label(variable)} {value!r}, not a DNS label: lower-case letters, digits and '-', starting and "
            "ending with a letter or digit, at most 63 characters (e.g. ollama, ollama-models)"
        )
    return text


def repo_path(value, variable=""):
    """`value` when it is a relative path of plain segments inside a repository, else NameError_."""
    text = value if isinstance(value, str) else None
    segments = text.strip("/").split("/") if text else []
    if (
        not text
        or text.startswith("/")
        or not all(_SEGMENT.fullmatch(s) for s in segments)
        or any(s in (".", "..") for s in segments)
    ):
        raise NameError_(
            f"{_label(variable)} {value!r}, not a path inside the repository: relative, made of letters, "
            "digits, '.', '_' and '-' separated by '/', without '..' (e.g. apps/base/ollama)"
        )
    return "/".join(segments)


def model_or_placeholder(value, variable=""):
    """`value` when it is one Flux placeholder alone (`${OLLAMA_MODEL}`) or a model reference that
    model_ref accepts, else NameError_ naming the variable, the value and why the reference is refused."""
    if isinstance(value, str) and _PLACEHOLDER.fullmatch(value):
        return value
    try:
        ModelRef.parse(value)
    except ModelRefError as exc:
        raise NameError_(
            f"{_label(variable)} {value!r}, neither a model reference nor one Flux placeholder alone (${{NAME}}, "
            f"NAME of A-Z, 0-9 and '_', e.g. ${{OLLAMA_MODEL}}, filled from cluster-vars): {exc}"
        ) from exc
    return value
