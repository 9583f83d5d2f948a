"""role_defaults: a role's default read from the role that owns the variable (the aiplatform.ollama.role_default
lookup), and the variables it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.aiplatform.ollama.plugins.plugin_utils.role_defaults import (
    RoleDefaultError,
    owning_role,
    role_default,
)

ROOT = Path(__file__).resolve().parents[4]


def test_role_default_reads_the_owning_role():
    assert owning_role("ollama_flux_cpu_limit", ROOT) == "ollama_flux"
    assert role_default("ollama_flux_cpu_limit", ROOT) == "1000m"
    assert role_default("ollama_flux_pvc_access_modes", ROOT) == ["ReadWriteOnce"]
    assert role_default("ollama_flux_models_preseeded", ROOT) is True


@pytest.mark.parametrize(("variable", "message"), [
    ("kagent_model", "does not start with the name of one of this collection's roles"),
    ("ollama_flux_no_such_variable", "not a variable of the ollama_flux role"),
    ("inference_check_model", "is a template"),
])
def test_role_default_refuses(variable, message):
    with pytest.raises(RoleDefaultError, match=message):
        role_default(variable, ROOT)
