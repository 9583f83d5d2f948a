"""ollama_service's argument spec and defaults agree, and every variable carries the role's prefix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[4] / "roles" / "ollama_service"
SPEC = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def test_every_default_is_specified_and_every_option_has_a_default():
    assert set(DEFAULTS) == set(SPEC)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_each_option_is_prefixed_described_and_typed(name):
    assert name.startswith("ollama_service_")
    assert SPEC[name].get("description")
    assert SPEC[name].get("type") in {"str", "bool", "int", "float", "list", "dict", "path"}


@pytest.mark.parametrize("name", sorted(SPEC))
def test_the_spec_default_is_the_roles_default(name):
    default = DEFAULTS[name]
    if isinstance(default, str) and "{{" in default:
        assert "default" not in SPEC[name], f"{name}: a templated default lives in defaults/main.yml only"
        return
    if SPEC[name]["type"] == "float":
        assert float(SPEC[name]["default"]) == float(default)
    else:
        assert SPEC[name]["default"] == default


def test_the_registry_password_is_never_logged():
    assert SPEC["ollama_service_registry_password"].get("no_log") is True


@pytest.mark.parametrize("name,choices", [("ollama_service_preflight", ["enforce", "warn", "off"]),
                                          ("ollama_service_kv_cache_type", ["f16", "q8_0", "q4_0"])])
def test_closed_choices(name, choices):
    assert SPEC[name]["choices"] == choices and DEFAULTS[name] in choices


def test_loopback_is_the_default_bind():
    assert DEFAULTS["ollama_service_host"].startswith("127.0.0.1:")
    assert DEFAULTS["ollama_service_allow_remote"] is False
