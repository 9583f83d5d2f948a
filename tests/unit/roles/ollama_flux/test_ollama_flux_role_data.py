"""The role's own data agree: argument specs, defaults, the gitops base, the inventories."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[4]
ROLE = ROOT / "roles" / "ollama_flux"


def load(path):
    return yaml.safe_load(path.read_text())


def test_every_default_is_specified_with_the_same_value():
    options = load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    defaults = load(ROLE / "defaults" / "main.yml")
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec.get("default") == defaults[name], name
        assert spec.get("description"), name
        assert name.startswith("ollama_flux_")


def test_gitops_base_equals_the_defaults():
    """base/services/environment.env is the defaults, so a stage file lists only its overrides."""
    base = load(ROLE / "vars" / "main.yml")["__ollama_flux_env_base"]
    defaults = load(ROLE / "defaults" / "main.yml")
    assert base["OLLAMA_CHART_VERSION"] == defaults["ollama_flux_chart_version"]
    assert base["OLLAMA_CPU_LIMIT"] == defaults["ollama_flux_cpu_limit"]
    assert base["OLLAMA_CPU_REQUEST"] == defaults["ollama_flux_cpu_request"]
    assert base["OLLAMA_MEMORY_LIMIT"] == defaults["ollama_flux_memory_limit"]
    assert base["OLLAMA_MEMORY_REQUEST"] == defaults["ollama_flux_memory_request"]
    assert base["OLLAMA_STORAGE_SIZE"] == defaults["ollama_flux_storage_size"]
    assert base["OLLAMA_MODEL"] == defaults["ollama_flux_model"]
    assert base["OLLAMA_HOST"] == defaults["ollama_flux_client_host"]
    assert base["OLLAMA_KEEP_ALIVE"] == defaults["ollama_flux_keep_alive"]
    assert base["OLLAMA_LOAD_TIMEOUT"] == defaults["ollama_flux_load_timeout"]
    assert base["OLLAMA_NUM_PARALLEL"] == str(defaults["ollama_flux_num_parallel"])
    assert base["OLLAMA_CONTEXT_LENGTH"] == str(defaults["ollama_flux_context_length"])
    assert base["OLLAMA_MAX_LOADED_MODELS"] == str(defaults["ollama_flux_max_loaded_models"])
    assert base["OLLAMA_REPLICAS"] == str(defaults["ollama_flux_replicas"])
    assert base["OLLAMA_SERVED_MODEL"] == f"{defaults['ollama_flux_model']}-t{base['OLLAMA_NUM_THREAD']}"


def test_inventories_use_only_specified_variables():
    options = load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    for inventory in ("dev", "prod", "local"):
        data = load(ROOT / "inventories" / inventory / "group_vars" / "all" / "ollama_flux.yml")
        assert set(data) <= set(options), inventory


def test_local_inventory_never_touches_a_cluster():
    data = load(ROOT / "inventories" / "local" / "group_vars" / "all" / "ollama_flux.yml")
    assert data["ollama_flux_mode"] == "gitops"
    assert "build/gitops" in data["ollama_flux_gitops_dir"]
