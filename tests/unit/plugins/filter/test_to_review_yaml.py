"""to_review_yaml: literal blocks for multi-line strings, quoted Flux placeholders, exact round trips."""

from __future__ import annotations

import collections
import datetime
import importlib.util
import json
import random
from collections.abc import Mapping, Sequence

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.plugins.filter.core import to_nice_yaml

from ansible_collections.aiplatform.ollama.plugins.filter.to_review_yaml import FilterModule, to_review_yaml
from ansible_collections.aiplatform.ollama.plugins.plugin_utils.review_yaml import (
    ReviewYamlError,
    dump_review_yaml,
    plain_data,
)

SCRIPT = "#!/bin/sh\nset -eu\n\nfor m in \"$@\"; do\n  ollama pull \"$m\"\ndone\n"

# Strings YAML or PyYAML make hard: each must load back unchanged, wherever it sits.
AWKWARD = [
    "",
    " ",
    "\n",
    "\n\n",
    "a\n",
    "a\n\n",
    "a\n\n\n",
    "\na",
    "\n\na\n",
    "  leading spaces\nnext",
    "  leading spaces on\n  every line\n",
    "trailing spaces  \non a line",
    "last line ends in spaces\n  ",
    "tab\there\nand\tthere",
    "\tindented by a tab\n",
    "key: value\n- item\n# not a comment\n",
    "a: b",
    "- a",
    "# hash",
    "x #y",
    "'single' and \"double\"\n\\backslash\\",
    "unicode: ünïcødé ✓ 😀\nsecond line",
    "\u00a0non-breaking\u00a0space\n",
    "carriage\r\nreturns\r\n",
    "only\rcr",
    "next\x85line",
    "line\u2028separator\nand\u2029paragraph",
    "\ufeffbom\n",
    "bell\x07\nnul\x00",
    "1.53.0",
    "1.5",
    "1e3",
    "0o17",
    "0x1F",
    "017",
    "1_000",
    "12:30:00",
    "2025-01-01",
    "true",
    "True",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "null",
    "Null",
    "~",
    ".inf",
    "-.inf",
    ".nan",
    "=",
    "<<",
    "---",
    "...",
    "--- \n...\n",
    "|",
    "|-\n  not a block",
    ">\nfolded?",
    "{a: 1}",
    "[1, 2]",
    "&anchor",
    "*alias",
    "!tag",
    "%directive",
    "@at",
    "`backtick`",
    "${OLLAMA_MODEL}",
    "${OLLAMA_MODEL}\n",
    "prefix-${OLLAMA_MODEL}",
    "${A}${B}",
    "x" * 3000,
    ("word " * 400).strip(),
    "long line " * 200 + "\nthen a short one",
]


def load_back(text):
    return yaml.safe_load(text)


def literal_header(text: str, key: str) -> int:
    """Index of the line `key: |`, `key: |-` or `key: |+` (an indentation indicator allowed)."""
    for index, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if stripped.startswith(f"{key}: |") and stripped[len(key) + 3:].lstrip("0123456789") in ("", "-", "+"):
            return index
    raise AssertionError(f"no literal block for {key!r} in:\n{text}")


def test_filter_is_registered():
    assert FilterModule().filters() == {"to_review_yaml": to_review_yaml}


def test_script_is_a_literal_block_one_line_per_line():
    text = to_review_yaml({"data": {"seed.sh": SCRIPT}})
    lines = text.splitlines()
    header = literal_header(text, "seed.sh")
    assert lines[header] == "  seed.sh: |"
    assert lines[header + 1:] == [f"    {line}" if line else "" for line in SCRIPT.splitlines()]
    assert load_back(text) == {"data": {"seed.sh": SCRIPT}}


@pytest.mark.parametrize(
    ("value", "indicator"),
    [("a\nb", "|-"), ("a\nb\n", "|"), ("a\nb\n\n", "|+"), ("a\n\nb\n", "|")],
)
def test_chomping_indicator_follows_the_trailing_newlines(value, indicator):
    text = to_review_yaml({"k": value})
    assert text.splitlines()[0] == f"k: {indicator}"
    assert load_back(text) == {"k": value}


def test_leading_spaces_get_an_indentation_indicator():
    value = "  indented first line\nsecond\n"
    text = to_review_yaml({"k": value})
    assert text.splitlines()[0] == "k: |2"
    assert load_back(text) == {"k": value}


@pytest.mark.parametrize(
    "value",
    ["trailing spaces  \nnext", "tab\there\nnext", "cr\r\nlf", "nel\x85x\ny", "bell\x07\nx"],
)
def test_strings_a_literal_block_cannot_hold_are_double_quoted(value):
    text = to_review_yaml({"k": value})
    assert text.startswith('k: "'), text
    assert "|" not in text.splitlines()[0]
    assert load_back(text) == {"k": value}


def test_flux_placeholders_are_double_quoted():
    obj = {
        "version": "${OLLAMA_CHART_VERSION}",
        "defaulted": "${OLLAMA_NUM_THREAD:=4}",
        "items": ["${OLLAMA_MODEL}", "plain"],
        "url": "http://${OLLAMA_HOST}/api",
    }
    text = to_review_yaml(obj)
    assert text.splitlines() == [
        'version: "${OLLAMA_CHART_VERSION}"',
        'defaulted: "${OLLAMA_NUM_THREAD:=4}"',
        "items:",
        '- "${OLLAMA_MODEL}"',
        "- plain",
        "url: http://${OLLAMA_HOST}/api",
    ]
    # Flux substitutes in the text: the number that replaces the placeholder must stay a string
    assert yaml.safe_load(text.replace("${OLLAMA_CHART_VERSION}", "1.53")).get("version") == "1.53"


def test_placeholders_inside_a_script_stay_in_the_literal_block():
    script = 'ollama show "${OLLAMA_MODEL}"\nexec ollama create "${OLLAMA_SERVED_MODEL}"\n'
    text = to_review_yaml({"args": [script]})
    assert text.splitlines() == ["args:", "- |", '  ollama show "${OLLAMA_MODEL}"',
                                 '  exec ollama create "${OLLAMA_SERVED_MODEL}"']


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
def test_round_trip_of_awkward_strings(value):
    obj = {"value": value, "list": [value, {"nested": value}], "deep": {"deeper": [[value]]}, value: "as a key"}
    text = to_review_yaml(obj)
    assert load_back(text) == obj
    assert load_back(to_review_yaml(value)) == value
    assert load_back(to_review_yaml([value])) == [value]


@pytest.mark.parametrize(
    "value",
    ["1.5", "0o17", "017", "0x1F", "0b101", "1e3", "-1E-3", "1_000", "+7", ".5", "true", "TRUE", "yes", "on", "null",
     "~", "", "12:30:00", "2025-01-01", ".nan", "-.inf"],
)
def test_strings_that_look_like_other_types_are_quoted(value):
    """Quoted where YAML 1.1 (PyYAML) or YAML 1.2 (the Go tools: 1e3, 0o17) would read a number,
    a boolean, null or a date."""
    text = to_review_yaml({"k": value})
    assert load_back(text) == {"k": value}
    assert text in (f"k: '{value}'\n", f'k: "{value}"\n')


@pytest.mark.parametrize("value", ["1.53.0", "0.18.3", "2Gi", "500m", "v1", "1.2.3-rc.1", "qwen2.5:72b"])
def test_strings_that_are_strings_in_every_yaml_stay_plain(value):
    assert to_review_yaml({"k": value}) == f"k: {value}\n"


def test_scalars_keep_their_types():
    obj = {"int": 3, "float": 1.5, "bool": True, "none": None, "zero": 0, "big": 2**70, "neg": -1.25e-9,
           "date": datetime.date(2025, 1, 2)}
    assert load_back(to_review_yaml(obj)) == obj


def test_nested_lists_of_dicts_are_indented_like_to_nice_yaml():
    obj = {
        "spec": {
            "containers": [
                {"name": "seed", "args": ["-c", "echo hi"], "env": [{"name": "A", "value": "1"}],
                 "volumeMounts": [{"name": "models", "mountPath": "/models"}]},
                {"name": "empty", "args": [], "env": {}},
            ],
            "matrix": [[1, 2], [{"a": [3]}]],
        }
    }
    text = to_review_yaml(obj, sort_keys=True)
    assert text == to_nice_yaml(obj, indent=2, width=1000)
    assert load_back(to_review_yaml(obj)) == obj


def test_keys_keep_their_order_unless_sorted():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"z": "1", "a": "2"}},
           "data": {"b": "1", "a": "2"}}
    text = to_review_yaml(obj)
    assert [line for line in text.splitlines() if not line.startswith(" ")] == \
        ["apiVersion: v1", "kind: ConfigMap", "metadata:", "data:"]
    assert text.index("z:") < text.index("a: '2'")
    sorted_text = to_review_yaml(obj, sort_keys=True)
    assert [line for line in sorted_text.splitlines() if not line.startswith(" ")] == \
        ["apiVersion: v1", "data:", "kind: ConfigMap", "metadata:"]


def test_without_multiline_strings_the_sorted_output_is_to_nice_yaml():
    obj = {"metadata": {"name": "ollama", "labels": {"app": "ollama"}}, "spec": {"values": {
        "image": {"tag": "0.18.3"}, "env": [{"name": "OLLAMA_NOPRUNE", "value": "1"}], "resources": {}}}}
    assert to_review_yaml(obj, sort_keys=True) == to_nice_yaml(obj, indent=2, width=1000)


def test_long_lines_are_never_wrapped():
    value = " ".join(f"word{i}" for i in range(2000))
    text = to_review_yaml({"k": value, "script": f"echo {value}\necho done\n"})
    assert text.splitlines()[0] == f"k: {value}"
    assert f"  echo {value}" in text.splitlines()
    assert load_back(text)["k"] == value


def test_deterministic():
    obj = {"b": {"set": {"z", "a", "m"}, "script": SCRIPT}, "a": ["${X}", 1, None], "c": "x\ny"}
    first = to_review_yaml(obj)
    assert first == to_review_yaml(obj) == to_review_yaml(json.loads(json.dumps({**obj, "b": {
        "set": ["a", "m", "z"], "script": SCRIPT}})))
    assert "set:\n  - a\n  - m\n  - z\n" in first


def test_the_same_object_twice_is_written_twice_without_anchors():
    shared = {"cpu": "500m", "memory": "2Gi"}
    text = to_review_yaml({"requests": shared, "limits": shared, "args": [SCRIPT, SCRIPT]})
    assert "&" not in text and "*" not in text
    assert load_back(text) == {"requests": shared, "limits": shared, "args": [SCRIPT, SCRIPT]}


class FrozenMapping(Mapping):
    def __init__(self, data):
        self._data = dict(data)

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


class Lines(Sequence):
    def __init__(self, *items):
        self._items = items

    def __getitem__(self, index):
        return self._items[index]

    def __len__(self):
        return len(self._items)


class Text(str):
    pass


def test_subclasses_and_abstract_containers_are_written_as_plain_data():
    obj = FrozenMapping({
        Text("name"): Text("seed"),
        "script": Text(SCRIPT),
        "args": Lines(Text("-c"), Text("${OLLAMA_MODEL}")),
        "tuple": (1, 2),
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
        "counter": collections.Counter({"x": 1}),
    })
    text = to_review_yaml(obj)
    assert load_back(text) == {"name": "seed", "script": SCRIPT, "args": ["-c", "${OLLAMA_MODEL}"], "tuple": [1, 2],
                               "ordered": {"z": 1, "a": 2}, "counter": {"x": 1}}
    assert "!!" not in text and "script: |" in text and '- "${OLLAMA_MODEL}"' in text


def ansible_typed(value):
    """value in the types the running ansible-core hands a filter: tagged values (data tagging, new in 2.19), else
    the YAML objects and unsafe text of the older cores; -> (the typed value, the base type they share)."""
    if importlib.util.find_spec("ansible._internal") is not None:
        from ansible._internal._datatag._tags import Origin
        from ansible.module_utils._internal._datatag import AnsibleTaggedObject

        origin = Origin(path="/inventory/group_vars/all.yml", line_num=3)

        def tag(item):
            if isinstance(item, dict):
                return origin.tag({tag(k): tag(v) for k, v in item.items()})
            if isinstance(item, (list, tuple)):
                return origin.tag(type(item)(tag(v) for v in item))
            return origin.tag(item)

        return tag(value), AnsibleTaggedObject
    from ansible.parsing.yaml.objects import AnsibleBaseYAMLObject, AnsibleMapping, AnsibleSequence, AnsibleUnicode
    from ansible.utils.unsafe_proxy import AnsibleUnsafeText

    def old(item):
        if isinstance(item, dict):
            return AnsibleMapping({AnsibleUnicode(k): old(v) for k, v in item.items()})
        if isinstance(item, list):
            return AnsibleSequence(old(v) for v in item)
        if isinstance(item, tuple):
            return tuple(old(v) for v in item)
        return AnsibleUnsafeText(item) if isinstance(item, str) else item

    return old(value), (AnsibleBaseYAMLObject, AnsibleUnsafeText)


def test_ansible_typed_values_are_written_as_plain_data():
    obj, ansible_type = ansible_typed({"script": SCRIPT, "version": "${OLLAMA_CHART_VERSION}",
                                      "list": ["a", 1, 1.5, ("t",)]})
    assert isinstance(obj, ansible_type) and isinstance(obj["script"], ansible_type)
    plain = plain_data(obj)
    assert type(plain) is dict and type(plain["script"]) is str and type(plain["list"][1]) is int
    assert type(next(iter(plain))) is str and type(plain["list"][3]) is list
    text = to_review_yaml(obj)
    assert load_back(text) == {"script": SCRIPT, "version": "${OLLAMA_CHART_VERSION}", "list": ["a", 1, 1.5, ["t"]]}
    assert text.startswith("script: |\n") and 'version: "${OLLAMA_CHART_VERSION}"' in text
    assert text == to_review_yaml(json.loads(json.dumps(plain)))


def test_values_that_are_not_data_are_an_error_naming_where():
    with pytest.raises(AnsibleFilterError, match=r"\$\.spec\.probe: object is not JSON-like"):
        to_review_yaml({"spec": {"probe": object()}})
    with pytest.raises(ReviewYamlError, match=r"\$\.set: a set of mixed types"):
        dump_review_yaml({"set": {1, "a"}})
    with pytest.raises(AnsibleFilterError, match="sort_keys must be a boolean"):
        to_review_yaml({}, sort_keys="yes")


def test_random_strings_round_trip():
    """Strings built from the pieces that trip YAML emitters, in every order: each loads back unchanged."""
    pieces = ["a", " ", "  ", "\n", "\n\n", "\t", ": ", "- ", "#", "'", '"', "\\", "|", ">", "é", "😀", "\r",
              "\x85", "\u2028", "\ufeff", "\x00", "\xa0", "{", "[", "&", "*", "!", "%", "${A}", "1", "true", "~"]
    rnd = random.Random(20250101)
    literal = 0
    for _ in range(3000):
        value = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 8)))
        obj = {"k": [value, {"x": value}]}
        text = to_review_yaml(obj)
        assert load_back(text) == obj, repr(value)
        literal += "- |" in text
    assert literal > 100  # the literal style is really exercised, not only the fallback
