"""The documentation's variable blocks (docs/roles.md, where the README's per-role guide moved, and any in
README.md or the other docs/*.md) are kept in step with each role's meta/argument_specs.yml: every variable
shown exists, and the default shown is the role's default. The guides show the variables a site sets most;
every variable is in the reference antsibull-docs generates from the same argument specs (`make docs`),
which each guide points to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())


def _specs() -> dict:
    options = {}
    for role in ROLES:
        spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
        options.update(spec["argument_specs"]["main"]["options"])
    return options


def _role_defaults() -> dict:
    values = {}
    for role in ROLES:
        values.update(yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {})
    return values


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# the roles whose guide in docs/roles.md carries a block of its variables and their defaults
GUIDES_WITH_VARIABLES = ("preflight", "node_tuning", "model_cache", "ollama_flux", "inference_check")


def _yaml_variables(path: Path) -> list[tuple[str, object]]:
    shown = []
    for block in re.findall(r"```yaml\n(.*?)```", path.read_text(), flags=re.S):
        data = yaml.safe_load(block)
        if isinstance(data, dict):
            shown += [(key, value) for key, value in data.items() if key.startswith(tuple(f"{r}_" for r in ROLES))]
    return shown


def _documented_variables() -> list[tuple[str, object]]:
    return [shown for path in DOCS for shown in _yaml_variables(path)]


def test_the_role_guides_show_each_roles_main_variables():
    shown = [name for name, _ in _yaml_variables(ROOT / "docs" / "roles.md")]
    for role in GUIDES_WITH_VARIABLES:
        assert any(name.startswith(f"{role}_") for name in shown), f"docs/roles.md shows no variable of {role}"


def test_the_role_guides_point_to_the_generated_reference():
    # the full list is generated (tools/docs.sh): a guide names its role's page of it and ansible-doc's
    text = (ROOT / "docs" / "roles.md").read_text()
    assert "make docs" in text
    for role in GUIDES_WITH_VARIABLES:
        assert f"`{role}_role.html`" in text, f"docs/roles.md does not point to {role}'s generated reference"
        assert f"ansible-doc -t role aiplatform.ollama.{role}`" in text, role
    assert "make docs" in (ROOT / "docs" / "modules.md").read_text()


@pytest.mark.parametrize(("name", "value"), _documented_variables(), ids=lambda v: v if isinstance(v, str) else "")
def test_documented_variable_matches_argument_spec(name, value):
    specs = _specs()
    assert name in specs, f"the docs show {name}, which no role's meta/argument_specs.yml declares"
    default = specs[name].get("default")
    if default is None:  # a default templated from another role's variable lives in defaults/main.yml only
        default = _role_defaults().get(name)
    if isinstance(default, str) and "{{" in default:
        return  # a templated default: the docs quote it, nothing to compare literally
    if specs[name].get("type") == "float" and default is not None:
        assert float(value) == float(default), f"{name}: the docs show {value!r}, the role's default is {default!r}"
    else:
        assert value == default, f"{name}: the docs show {value!r}, the role's default is {default!r}"
