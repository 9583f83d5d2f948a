"""The Ollama service's unit as the role writes it, and each setting it refuses before anything changes."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.num_thread import num_thread
from ansible_collections.aiplatform.ollama.plugins.filter.served_model import served_model
from ansible_collections.aiplatform.ollama.plugins.filter.service_unit import service_unit

BASE = {
    "host": "127.0.0.1:11434",
    "cpus": "2",
    "memory_max": "4Gi",
    "install_dir": "/opt/ollama",
    "state_dir": "/var/lib/ollama",
    "store_path": "/var/lib/ollama/models",
    "user": "ollama",
    "num_parallel": 2,
    "context_length": 8192,
    "keep_alive": "24h",
    "max_loaded_models": 1,
}


def lines(result):
    return result["unit"].splitlines()


def test_the_unit_runs_the_current_release_as_the_service_user():
    unit = lines(service_unit(BASE))
    assert "ExecStart=/opt/ollama/current/bin/ollama serve" in unit
    assert "User=ollama" in unit and "Group=ollama" in unit
    assert "WorkingDirectory=/var/lib/ollama" in unit
    assert "[Install]" in unit and "WantedBy=multi-user.target" in unit


def test_the_environment_carries_the_sizing_and_never_pulls_or_prunes():
    result = service_unit(BASE)
    unit = lines(result)
    for entry in ('Environment="OLLAMA_HOST=127.0.0.1:11434"', 'Environment="OLLAMA_MODELS=/var/lib/ollama/models"',
                  'Environment="OLLAMA_NOPRUNE=1"', 'Environment="OLLAMA_KEEP_ALIVE=24h"',
                  'Environment="OLLAMA_NUM_PARALLEL=2"', 'Environment="OLLAMA_CONTEXT_LENGTH=8192"',
                  'Environment="OLLAMA_MAX_LOADED_MODELS=1"', 'Environment="HOME=/var/lib/ollama"'):
        assert entry in unit
    assert result["url"] == "http://127.0.0.1:11434"


def test_the_sandbox_writes_only_the_state_directory():
    unit = lines(service_unit(BASE))
    assert "ProtectSystem=strict" in unit
    assert [line for line in unit if line.startswith("ReadWritePaths=")] == ["ReadWritePaths=/var/lib/ollama"]
    assert "ReadOnlyPaths=/var/lib/ollama/models" in unit
    for setting in ("ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "NoNewPrivileges=yes",
                    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
                    "MemoryDenyWriteExecute=yes", "CapabilityBoundingSet=", "IPAddressDeny=any",
                    "IPAddressAllow=localhost", "LimitMEMLOCK=infinity"):
        assert setting in unit


def test_memory_deny_write_execute_can_be_turned_off():
    unit = lines(service_unit({**BASE, "memory_deny_write_execute": False}))
    assert not [line for line in unit if line.startswith("MemoryDenyWriteExecute")]


@pytest.mark.parametrize("cpus,cpuset,cores,quota,threads", [
    ("2", "", None, 200, 2),
    ("1500m", "", None, 150, 1),       # whole CPUs of the quota
    ("4", "0-1", None, 400, 2),        # the CPU set is the tighter bound
    ("", "0,2,4-5", None, None, 4),
    ("8", "", 4, 800, 4),              # the host's physical cores cap it
    ("", "", 6, None, 6),              # the whole host
])
def test_threads_and_quota_follow_the_cpus_the_unit_may_use(cpus, cpuset, cores, quota, threads):
    result = service_unit({**BASE, "cpus": cpus, "cpuset": cpuset}, physical_cores=cores)
    assert result["num_thread"] == threads
    assert result["cpu_quota_pct"] == quota
    unit = lines(result)
    assert (f"CPUQuota={quota}%" in unit) if quota else not [line for line in unit if line.startswith("CPUQuota")]
    allowed = [line for line in unit if line.startswith("AllowedCPUs")]
    assert allowed == ([f"AllowedCPUs={cpuset}"] if cpuset else [])


def test_the_served_model_is_the_cluster_paths_derivation():
    # the same formula as a pod with the same CPU limit: one name for the served model
    result = service_unit({**BASE, "cpus": "3"})
    assert result["num_thread"] == num_thread("3")
    assert served_model("qwen2.5:72b", cpu_limit=result["num_thread"]) == "qwen2.5:72b-t3"


def test_memory_max_auto_takes_the_largest_models_need():
    result = service_unit({**BASE, "memory_max": "auto"}, model_memory_bytes=[700 * 2**20 + 1, 3 * 2**30])
    assert result["memory_max_bytes"] == 3 * 2**30
    assert f"MemoryMax={3 * 2**30}" in lines(result)
    small = service_unit({**BASE, "memory_max": "auto"}, model_memory_bytes=[10 * 2**20])
    assert small["memory_max_bytes"] == 512 * 2**20


@pytest.mark.parametrize("host,url", [
    ("127.0.0.1", "http://127.0.0.1:11434"),
    ("127.0.0.1:18000", "http://127.0.0.1:18000"),
    ("[::1]:11434", "http://[::1]:11434"),
    ("localhost:11500", "http://127.0.0.1:11500"),
])
def test_loopback_binds_are_accepted(host, url):
    assert service_unit({**BASE, "host": host})["url"] == url


@pytest.mark.parametrize("host", ["0.0.0.0:11434", "192.0.2.10", "[::]:11434", "ollama.example.com:11434"])
def test_a_bind_beyond_loopback_is_refused_without_allow_remote(host):
    with pytest.raises(AnsibleFilterError, match=r"ollama_service_host is .*(allow_remote|IP address)"):
        service_unit({**BASE, "host": host})


def test_an_allowed_remote_bind_needs_its_client_networks():
    with pytest.raises(AnsibleFilterError, match="ollama_service_ip_address_allow is empty"):
        service_unit({**BASE, "host": "0.0.0.0:11434", "allow_remote": True})
    result = service_unit({**BASE, "host": "0.0.0.0:11434", "allow_remote": True,
                           "ip_address_allow": ["10.1.2.0/24", "192.0.2.7"]})
    assert "IPAddressAllow=localhost 10.1.2.0/24 192.0.2.7/32" in lines(result)
    assert not result["loopback"]


@pytest.mark.parametrize("change,message", [
    ({"host": "http://127.0.0.1:11434"}, "ollama_service_host is 'http://127.0.0.1:11434': .*no scheme"),
    ({"host": "127.0.0.1:99999"}, "ollama_service_host .*between 1 and 65535"),
    ({"cpus": "500m"}, "ollama_service_cpus is '500m', less than one whole CPU"),
    ({"cpus": "two"}, "ollama_service_cpus is 'two'"),
    ({"cpuset": "3-1"}, "ollama_service_cpuset is '3-1': the range 3-1 runs backwards"),
    ({"memory_max": "100Mi"}, "ollama_service_memory_max is '100Mi': below 256Mi"),
    ({"memory_max": "auto"}, "ollama_service_memory_max is auto but no model was sized"),
    ({"store_path": "/home/me/models"}, "ollama_service_store_path is '/home/me/models', which the sandbox hides"),
    ({"store_path": "/var/lib/my models"}, "ollama_service_store_path is '/var/lib/my models': give an absolute"),
    ({"state_dir": "/var/lib/../etc"}, "ollama_service_state_dir is .*no .. components"),
    ({"store_path": "/opt/ollama/models"}, "ollama_service_store_path is '/opt/ollama/models': the store must"),
    ({"user": "root"}, "ollama_service_user is 'root'"),
    ({"num_parallel": 0}, "ollama_service_num_parallel is 0"),
    ({"keep_alive": "1 day"}, "ollama_service_keep_alive is '1 day'"),
    ({"environment": {"OLLAMA_HOST": "0.0.0.0"}}, "ollama_service_environment sets OLLAMA_HOST"),
    ({"environment": {"OLLAMA_ORIGINS": "a\"b"}}, "ollama_service_environment has 'OLLAMA_ORIGINS'"),
])
def test_bad_settings_are_refused_naming_the_variable(change, message):
    with pytest.raises(AnsibleFilterError, match=message):
        service_unit({**BASE, **change})


def test_extra_environment_is_written():
    unit = lines(service_unit({**BASE, "environment": {"OLLAMA_FLASH_ATTENTION": "1"}}))
    assert 'Environment="OLLAMA_FLASH_ATTENTION=1"' in unit


def test_the_baremetal_inventory_renders_and_refuses_its_url_until_the_checksum_is_set():
    from pathlib import Path

    import yaml

    from ansible_collections.aiplatform.ollama.plugins.filter.service_release import service_release

    root = Path(__file__).resolve().parents[4]
    inventory = yaml.safe_load((root / "inventories" / "baremetal" / "group_vars" / "ollama_service.yml").read_text())
    defaults = yaml.safe_load((root / "roles" / "ollama_service" / "defaults" / "main.yml").read_text())
    values = {**defaults, **inventory}
    settings = {key: values[f"ollama_service_{key}"] for key in (
        "host", "allow_remote", "ip_address_allow", "cpus", "cpuset", "install_dir", "state_dir", "store_path",
        "user", "num_parallel", "context_length", "keep_alive", "max_loaded_models", "environment")}
    result = service_unit({**settings, "memory_max": "auto"}, model_memory_bytes=[900 * 2**20])
    assert result["num_thread"] == 2 and result["cpu_quota_pct"] == 200 and result["loopback"]
    # the shipped example names no checksum: the role refuses the URL until the user sets it
    with pytest.raises(AnsibleFilterError, match="ollama_service_archive_checksum"):
        service_release(str(values["ollama_service_version"]),
                        archive={"url": "https://example.com/ollama-linux-amd64.tgz",
                                 "checksum": values["ollama_service_archive_checksum"]})
