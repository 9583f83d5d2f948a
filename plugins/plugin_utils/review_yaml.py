# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""YAML for pull-request review: block style, no wrapping, multi-line strings as literal blocks.

The dump is what ``to_nice_yaml(indent=2)`` gives (PyYAML's safe dumper, lists at their key's
indentation), with the differences a reviewer of a GitOps tree cares about:

* keys stay in the order the data holds them (a Kubernetes object reads as apiVersion, kind,
  metadata, spec) unless ``sort_keys`` asks for PyYAML's sorted order, which ``to_nice_yaml`` uses;
* no line is ever wrapped;
* every multi-line string is a literal block (``|``, ``|-`` or ``|+``), one line of the string per
  line of the file; a string YAML cannot hold in a literal block exactly (trailing spaces on a line,
  tabs, carriage returns, other control characters) is double-quoted instead, never altered;
* a string that is only a Flux placeholder such as ``${OLLAMA_MODEL}`` is double-quoted, so what Flux
  substitutes into it stays a string (Flux substitutes in the text, before the YAML is parsed);
* a string that YAML 1.2, as the Go tools read it, would take for a number (``1e3``, ``0o17``) is
  quoted, as PyYAML already quotes what YAML 1.1 would take for one (``1.5``, ``yes``, ``null``).

The data may be any JSON-like value built from Mapping, Sequence, str, int, float, bool and None,
subclasses included (Ansible hands a filter tagged and lazily templated containers and strings):
it is copied into plain Python types first, so the output depends only on the values and is the
same byte for byte every time. Only the standard library and PyYAML are used.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Set

import yaml

__all__ = ["PLACEHOLDER", "ReviewYamlError", "dump_review_yaml", "plain_data"]

# ${NAME}, and Flux's ${NAME:=default} / ${NAME:-default}, as the whole string.
PLACEHOLDER = re.compile(r"\$\{[A-Za-z0-9_]+(?::[=-][^}]*)?\}")

# Plain scalars that YAML 1.2 (Go's yaml libraries: kubectl, kustomize, Helm, Flux) reads as a number,
# a boolean or null. PyYAML resolves by YAML 1.1, so it quotes most of them but writes 1e3, 0o17 and
# 0b1_0 bare, and those would reach the cluster as numbers.
_YAML12_NOT_STR = re.compile(
    r"[-+]?(?:[0-9][0-9_]*|0[oO][0-7_]+|0[xX][0-9a-fA-F_]+|0[bB][01_]+)"
    r"|[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|true|True|TRUE|false|False|FALSE|null|Null|NULL|~|"
)

_STR_TAG = "tag:yaml.org,2002:str"
# The line breaks of YAML 1.1 other than "\n", and the byte order mark: only the escapes of a
# double-quoted string carry them unchanged (a loader folds "\r" and NEL into "\n"; PyYAML's pure
# Python emitter writes NEL raw even in a single-quoted string).
_LINE_BREAKS = re.compile("[\r\x85\u2028\u2029\ufeff]")
# Wide enough that the emitter never folds a line, small enough for libyaml's C int.
_NO_WRAP = 2**30


class ReviewYamlError(TypeError):
    """The data holds a value that has no faithful YAML form (not JSON-like)."""


def plain_data(value, path="$"):
    """A copy of value made of plain dict, list, str, int, float, bool and None (dates and bytes
    kept): str/int/float subclasses become their base type, any Mapping a dict, any other
    iterable a list (a set sorted, so that the output does not depend on hashing)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime.datetime):
        return datetime.datetime.combine(value.date(), value.timetz())
    if isinstance(value, datetime.date):
        return datetime.date(value.year, value.month, value.day)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, Mapping):
        return {plain_data(key, f"{path}.<key>"): plain_data(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, Set):
        items = [plain_data(item, f"{path}[]") for item in value]
        try:
            return sorted(items)
        except TypeError as exc:
            raise ReviewYamlError(f"{path}: a set of mixed types has no stable order; make it a list") from exc
    if isinstance(value, Iterable):
        return [plain_data(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise ReviewYamlError(f"{path}: {type(value).__name__} is not JSON-like data (a mapping, a list, a string, a "
                          "number, a boolean or null); convert it first, e.g. with | string")


try:  # the same emitter as to_nice_yaml, which Ansible takes from libyaml when PyYAML has it
    from yaml import CSafeDumper as _SafeDumper
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeDumper as _SafeDumper


class _Dumper(_SafeDumper):
    """The safe dumper with the review styles; never writes anchors and aliases."""

    literal_blocks = True

    def ignore_aliases(self, data):
        return True

    def represent_str(self, data):
        if PLACEHOLDER.fullmatch(data) or _LINE_BREAKS.search(data):
            return self.represent_scalar(_STR_TAG, data, style='"')
        if "\n" in data:
            style = "|" if self.literal_blocks and _literal_round_trips(data) else '"'
            return self.represent_scalar(_STR_TAG, data, style=style)
        if _YAML12_NOT_STR.fullmatch(data):
            return self.represent_scalar(_STR_TAG, data, style="'")
        return super().represent_str(data)


_Dumper.add_representer(str, _Dumper.represent_str)


class _ProbeDumper(_Dumper):
    """Writes a multi-line string as a literal block without asking whether it survives."""

    def represent_str(self, data):
        return self.represent_scalar(_STR_TAG, data, style="|")


_ProbeDumper.add_representer(str, _ProbeDumper.represent_str)


def _dump(data, dumper, sort_keys):
    return yaml.dump(data, Dumper=dumper, indent=2, width=_NO_WRAP, default_flow_style=False,
                     allow_unicode=True, sort_keys=sort_keys)


_PROBED: dict[str, bool] = {}


def _literal_round_trips(text):
    """Whether text, written as a literal block inside a block mapping and a block sequence, loads
    back as the very same string. The emitter falls back to double quotes by itself when YAML has
    no literal form for the text; this is the proof, whatever the emitter and its version."""
    if text not in _PROBED:
        probe = {"k": [text, {"k": text}]}
        try:
            ok = yaml.safe_load(_dump(probe, _ProbeDumper, False)) == probe
        except yaml.YAMLError:
            ok = False
        if len(_PROBED) > 4096:
            _PROBED.clear()
        _PROBED[text] = ok
    return _PROBED[text]


class _QuotedDumper(_Dumper):
    """Every multi-line string double-quoted, as to_nice_yaml leaves most of them."""

    literal_blocks = False


def dump_review_yaml(data, sort_keys=False, literal_blocks=True):
    """data as block-style YAML for review (see the module docstring); ends with a newline.

    Raises ReviewYamlError when data holds a value that is not JSON-like."""
    return _dump(plain_data(data), _Dumper if literal_blocks else _QuotedDumper, bool(sort_keys))
