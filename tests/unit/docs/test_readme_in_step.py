"""The README's variable blocks are kept in step with each role's meta/argument_specs.yml:
every variable it shows exists, and the default it shows is the role's default."""

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


def _readme_variables() -> list[tuple[str, object]]:
    shown = []
    for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S):
        data = yaml.safe_load(block)
        if isinstance(data, dict):
            shown += [(key, value) for key, value in data.items() if key.startswith(tuple(f"{r}_" for r in ROLES))]
    return shown


def test_readme_shows_role_variables():
    assert len(_readme_variables()) > 40


@pytest.mark.parametrize(("name", "value"), _readme_variables(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_variable_matches_argument_spec(name, value):
    specs = _specs()
    assert name in specs, f"README shows {name}, which no role's meta/argument_specs.yml declares"
    default = specs[name].get("default")
    if default is None:  # a default templated from another role's variable lives in defaults/main.yml only
        default = _role_defaults().get(name)
    if isinstance(default, str) and "{{" in default:
        return  # a templated default: the README quotes it, nothing to compare literally
    if specs[name].get("type") == "float" and default is not None:
        assert float(value) == float(default), f"{name}: README shows {value!r}, the role's default is {default!r}"
    else:
        assert value == default, f"{name}: README shows {value!r}, the role's default is {default!r}"
