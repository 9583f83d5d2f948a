"""ollama_flux's settings check: each finding names the variable, the value and the fix; good settings
pass; the derived alignment and Flux's longest time."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.aiplatform.ollama.plugins.filter.ollama_flux_settings import FilterModule
from ansible_collections.aiplatform.ollama.plugins.module_utils.flux_settings import (
    REQUIRED,
    FluxSettingsError,
    flux_may_take_seconds,
    settings_findings,
)

ROLE = Path(__file__).resolve().parents[4] / "roles" / "ollama_flux"
ROLE_DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())

ollama_flux_settings = FilterModule().filters()["ollama_flux_settings"]


def settings(**changes):
    """The role's defaults, with the changes (names without the ollama_flux_ prefix)."""
    values = {name: ROLE_DEFAULTS[name] for name in REQUIRED}
    values.update({f"ollama_flux_{key}": value for key, value in changes.items()})
    return values


def test_the_role_defaults_pass():
    assert settings_findings(settings()) == []


@pytest.mark.parametrize("changes,expected", [
    ({"environment": "staging"}, "ollama_flux_environment is 'staging', which is not one of"),
    ({"chart_version": "1.53"}, "ollama_flux_chart_version is '1.53', not a semantic version"),
    ({"chart_version": ">=1.53.0"}, "ollama_flux_chart_version is '>=1.53.0'"),
    # a trailing newline would reach the HelmRelease: refused, never trimmed
    ({"chart_version": "1.53.0\n"}, "ollama_flux_chart_version is '1.53.0\n'"),
    ({"cpu_limit": "2 cores"}, "ollama_flux_cpu_limit is '2 cores', not a Kubernetes CPU quantity"),
    ({"cpu_limit": "2\n"}, "ollama_flux_cpu_limit is '2\n', not a Kubernetes CPU quantity"),
    ({"memory_limit": "4GB"}, "ollama_flux_memory_limit is '4GB', not a Kubernetes quantity"),
    ({"storage_size": "10 Gi"}, "ollama_flux_storage_size is '10 Gi'"),
    ({"cpu_limit": "250m"}, "ollama_flux_cpu_limit (250m) is below ollama_flux_cpu_request (500m)"),
    ({"memory_limit": "1Gi"}, "ollama_flux_memory_limit (1Gi) is below ollama_flux_memory_request (2Gi)"),
    ({"service_type": "NodePort"}, "ollama_flux_service_type is 'NodePort': Ollama has no authentication"),
    ({"timeout": "ten minutes"}, "ollama_flux_timeout is 'ten minutes', not a Flux duration"),
    ({"num_parallel": 0}, "ollama_flux_num_parallel is '0': give a whole number of at least 1"),
    ({"context_length": "128"}, "ollama_flux_context_length is '128': give a whole number of at least 256"),
    ({"keep_alive": "5m\n"}, "ollama_flux_keep_alive is '5m\n'"),
    ({"load_timeout": "-1"}, "ollama_flux_load_timeout is '-1', not a Go duration"),
    ({"mount_path": "root/.ollama"}, "ollama_flux_mount_path is 'root/.ollama': give the absolute path"),
    ({"mount_path": "/data/ollama store"}, "ollama_flux_mount_path is '/data/ollama store'"),
    ({"wait_timeout": 600, "timeout": "10m", "install_retries": 2, "upgrade_retries": 3},
     "ollama_flux_wait_timeout is 600s, but Flux may take 2400s (ollama_flux_timeout 10m x 4 attempts)"),
    ({"mode": "gitops", "gitops_dir": ""}, "ollama_flux_mode is gitops but ollama_flux_gitops_dir is empty"),
    ({"models_preseeded": False, "model": "registry.example.com/team/m:v1"},
     "ollama_flux_model is 'registry.example.com/team/m:v1', and with ollama_flux_models_preseeded false"),
    ({"thread_alignment": "seed", "models_preseeded": "false"},
     "ollama_flux_thread_alignment is seed, but ollama_flux_models_preseeded is false"),
    ({"pvc_mode": "chart"}, "ollama_flux_pvc_mode is chart, but ollama_flux_models_preseeded is true"),
])
def test_each_problem_is_named_with_its_fix(changes, expected):
    found = settings_findings(settings(**changes))
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize("changes", [
    {"service_type": "NodePort", "allow_non_clusterip": "true"},
    {"keep_alive": "-1"}, {"keep_alive": "300"}, {"keep_alive": "1h30m"},
    {"cpu_limit": "1.5", "cpu_request": ".5"}, {"memory_limit": "4G", "memory_request": "1e9"},
    {"wait_timeout": 0, "timeout": "1h"},
    {"models_preseeded": False, "thread_alignment": "off", "model": "registry.example.com/team/m:v1"},
])
def test_good_settings_pass(changes):
    assert settings_findings(settings(**changes)) == []


def test_every_problem_is_reported_at_once():
    found = settings_findings(settings(chart_version="1.53", cpu_limit="2 cores", mount_path="relative"))
    assert [f.split(" ")[0] for f in found] == [
        "ollama_flux_chart_version", "ollama_flux_cpu_limit", "ollama_flux_mount_path"]


def test_a_missing_variable_is_named():
    values = settings()
    del values["ollama_flux_pvc_mode"]
    with pytest.raises(FluxSettingsError, match="lack ollama_flux_pvc_mode"):
        settings_findings(values)


def test_the_filter_derives_who_aligns_and_how_long_flux_may_take():
    assert flux_may_take_seconds("15m", 3, 1) == 3600
    derived = ollama_flux_settings(settings(timeout="10m", install_retries=2, upgrade_retries=2))
    assert derived == {"findings": [], "flux_may_take_s": 1800, "alignment": "seed"}
    derived = ollama_flux_settings(settings(models_preseeded="no", thread_alignment="auto"))
    assert derived["alignment"] == "chart_create"
    assert ollama_flux_settings(settings(timeout="soon"))["flux_may_take_s"] is None


def test_the_role_sends_every_setting_the_check_reads():
    """validate.yml's list of names is the check's REQUIRED, so no setting goes unchecked."""
    tasks = yaml.safe_load((ROLE / "tasks" / "validate.yml").read_text())
    sent = next(task for task in tasks if task["name"] == "Check the settings")["vars"]["__names"]
    assert sorted(sent) == sorted(REQUIRED)
