"""Bad input fails before anything is written, and the message names the variable."""

from __future__ import annotations

import pytest

CASES = {
    "memory-unit-GB": ({"ollama_flux_memory_limit": "4GB"}, "ollama_flux_memory_limit"),
    "storage-with-space": ({"ollama_flux_storage_size": "10 Gi"}, "ollama_flux_storage_size"),
    "cpu-in-words": ({"ollama_flux_cpu_limit": "2 cores"}, "ollama_flux_cpu_limit"),
    "cpu-limit-below-request": ({"ollama_flux_cpu_limit": "250m"}, "ollama_flux_cpu_limit (250m) is below"),
    "memory-limit-below-request": ({"ollama_flux_memory_limit": "1Gi"}, "ollama_flux_memory_limit (1Gi) is below"),
    "chart-version-not-semver": ({"ollama_flux_chart_version": "1.53"}, "ollama_flux_chart_version"),
    "chart-version-range": ({"ollama_flux_chart_version": ">=1.53.0"}, "ollama_flux_chart_version"),
    "unknown-environment": ({"ollama_flux_environment": "staging"}, "ollama_flux_environment"),
    "nodeport": ({"ollama_flux_service_type": "NodePort"}, "ollama_flux_service_type"),
    "not-a-service-type": ({"ollama_flux_service_type": "ExternalName"}, "ollama_flux_service_type"),
    "no-gitops-dir": ({"ollama_flux_gitops_dir": ""}, "ollama_flux_gitops_dir"),
    # a final newline passes a regex match ending in $
    "chart-version-newline": ({"ollama_flux_chart_version": "1.53.0\n"}, "ollama_flux_chart_version"),
    "cpu-newline": ({"ollama_flux_cpu_limit": "2\n"}, "ollama_flux_cpu_limit"),
    "memory-newline": ({"ollama_flux_memory_limit": "52Gi\n"}, "ollama_flux_memory_limit"),
    "keep-alive-newline": ({"ollama_flux_keep_alive": "5m\n"}, "ollama_flux_keep_alive"),
    "mount-path-relative": ({"ollama_flux_mount_path": "root/.ollama"}, "ollama_flux_mount_path is 'root/.ollama'"),
    "mount-path-blank": ({"ollama_flux_mount_path": "/data/ollama store"}, "ollama_flux_mount_path"),
    "mount-path-newline": ({"ollama_flux_mount_path": "/root/.ollama\n"}, "ollama_flux_mount_path"),
    # the chart's postStart cannot write a Modelfile named registry.example.com/team/m:v1 (seen on a real node)
    "chart-create-with-a-registry-name": (
        {"ollama_flux_models_preseeded": False, "ollama_flux_model": "registry.example.com/team/m:v1"},
        "ollama_flux_model is 'registry.example.com/team/m:v1', and with ollama_flux_models_preseeded false"),
    "no-replica": ({"ollama_flux_replicas": 0}, "ollama_flux_replicas is 0, it must be at least 1"),
    "replicas-pulling-at-start": (
        {"ollama_flux_replicas": 2, "ollama_flux_models_preseeded": False, "ollama_flux_thread_alignment": "off"},
        "ollama_flux_replicas is 2, but ollama_flux_models_preseeded is false"),
    "replicas-on-a-one-pod-claim": (
        {"ollama_flux_replicas": 2, "ollama_flux_pvc_access_modes": ["ReadWriteOncePod"]},
        "ReadWriteOncePod claim is mounted by one pod only"),
    "unknown-strategy": ({"ollama_flux_update_strategy": "BlueGreen"}, "ollama_flux_update_strategy"),
    "chart-claim-read-only": ({"ollama_flux_pvc_mode": "chart"}, "ollama_flux_pvc_mode is chart, but"),
    "seed-alignment-without-seed": (
        {"ollama_flux_thread_alignment": "seed", "ollama_flux_models_preseeded": False},
        "ollama_flux_thread_alignment is seed, but ollama_flux_models_preseeded is false"),
}


@pytest.mark.parametrize("extra,expected", list(CASES.values()), ids=list(CASES))
def test_bad_input_fails_early(run_deploy, tmp_path, extra, expected):
    target = tmp_path / "repo"
    result = run_deploy("dev", {"ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(target), **extra})
    assert result.returncode != 0, result.output[-3000:]
    assert expected in result.output, result.output[-3000:]
    assert not target.exists(), "files were written before the input was rejected"
    assert "Render the" not in result.output


def test_external_service_needs_explicit_consent(run_deploy, tmp_path):
    target = tmp_path / "repo"
    result = run_deploy(
        "dev",
        {
            "ollama_flux_mode": "gitops",
            "ollama_flux_gitops_dir": str(target),
            "ollama_flux_service_type": "NodePort",
            "ollama_flux_allow_non_clusterip": True,
        },
    )
    assert result.returncode == 0, result.output[-3000:]
    assert "type: NodePort" in (target / "apps/base/ollama/helmrelease.yaml").read_text()
