"""One source for the values roles share: a role reading another role's variable falls back to that role's
own default (the aiplatform.ollama.role_default lookup), never to a copy of it. A copy that remains (a
literal `| default(...)`) must equal the source, unless it is listed below with why it differs on purpose."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.aiplatform.ollama.plugins.plugin_utils.role_defaults import owning_role, role_default

ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "defaults" / "main.yml").is_file())
ROLE_FILES = sorted(p for p in (ROOT / "roles").rglob("*.yml") if "files" not in p.relative_to(ROOT).parts)
_PREFIX = "|".join(sorted(ROLES, key=len, reverse=True))
# `<var> | default(<argument>)`, the argument up to its closing parenthesis (one level of nesting)
READ_WITH_DEFAULT = re.compile(rf"\b((?:{_PREFIX})_[a-z0-9_]+) *\| *default\(((?:[^()]|\([^()]*\))*)\)")
LOOKUP = re.compile(r"lookup\('aiplatform\.ollama\.role_default', '([a-z0-9_]+)'\)")

# (reading role, variable): why its fallback is not the owner's default
DIFFERS_ON_PURPOSE = {
    ("preflight", "model_cache_models"): "without model_cache in the run only the served model is judged",
    ("preflight", "ollama_flux_storage_size"): "a claim neither role names is not known here: not checked",
    ("diagnose", "inference_check_endpoints"): "run alone, diagnose probes only the endpoints it is given",
}


def _reads():
    """(file, reading role, variable, default argument) for every read of another role's variable."""
    found = []
    for path in ROLE_FILES:
        reader = path.relative_to(ROOT / "roles").parts[0]
        for match in READ_WITH_DEFAULT.finditer(path.read_text()):
            variable, argument = match.groups()
            if owning_role(variable, ROOT) != reader:
                found.append((path.relative_to(ROOT).as_posix(), reader, variable, argument.strip()))
    return found


def _literal(argument):
    try:
        return True, ast.literal_eval(argument.replace("true", "True").replace("false", "False"))
    except (ValueError, SyntaxError):
        return False, None


def _id(read):
    return f"{read[0]}:{read[2]}"


def test_roles_read_other_roles_variables():
    # the tests below must have something to check
    assert len([read for read in _reads() if read[2].startswith("ollama_flux_")]) > 40


@pytest.mark.parametrize("read", _reads(), ids=_id)
def test_a_restated_default_equals_its_source(read):
    path, reader, variable, argument = read
    if argument == "none":
        return  # "not set", for a filter that applies the owner's default itself (deployment_served_model)
    looked_up = LOOKUP.fullmatch(argument)
    if looked_up:
        assert looked_up.group(1) == variable, f"{path}: {variable} falls back to another variable's default"
        role_default(variable, ROOT)  # the owner defines it, as a value
        return
    is_literal, value = _literal(argument)
    if not is_literal:
        return  # another variable's value, e.g. model_cache_storage_size | default(ollama_flux_storage_size ...)
    source = yaml.safe_load((ROOT / "roles" / owning_role(variable, ROOT) / "defaults" / "main.yml").read_text())
    if variable not in source:
        return  # a result the other role sets (preflight_result), not an input with a default
    if (reader, variable) in DIFFERS_ON_PURPOSE:
        assert value != source[variable], f"{path}: {variable} now equals its source: drop it from DIFFERS_ON_PURPOSE"
        return
    assert value == source[variable], (
        f"{path} falls back to {argument} for {variable}, but its role's default is {source[variable]!r}: read it "
        f"with lookup('aiplatform.ollama.role_default', '{variable}') instead of a copy")


@pytest.mark.parametrize("read", [r for r in _reads() if r[2].startswith("ollama_flux_")], ids=_id)
def test_ollama_flux_variables_are_read_from_their_source(read):
    path, reader, variable, argument = read
    if argument == "none" or (reader, variable) in DIFFERS_ON_PURPOSE:
        return
    assert LOOKUP.fullmatch(argument), f"{path} copies {variable}'s default ({argument}) instead of reading it"
