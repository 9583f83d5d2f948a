# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What node_tuning left on a real systemd host."""

from __future__ import annotations

import json

SYSCTL_FILE = "/etc/sysctl.d/90-ollama-node-tuning.conf"


def sysctl_entries(host):
    entries = {}
    for line in host.file(SYSCTL_FILE).content_string.splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            entries[key.strip()] = value.strip()
    return entries


def test_sysctl_drop_in_holds_only_the_managed_keys(host):
    drop_in = host.file(SYSCTL_FILE)
    assert drop_in.is_file
    assert drop_in.user == "root"
    assert drop_in.mode == 0o644
    # one NUMA node here: numa_balancing is left alone
    assert sysctl_entries(host) == {"vm.swappiness": "1", "vm.max_map_count": "262144"}


def test_cni_sysctls_are_untouched(host):
    assert not [key for key in sysctl_entries(host) if "ip_forward" in key or key.startswith("net.")]
    managed = host.run("grep -rhsE '^[^#]*(ip_forward|bridge-nf-call|forwarding|rp_filter)' /etc/sysctl.d")
    assert managed.stdout == ""


def test_kernel_settings_were_not_written_live_from_the_container(host):
    # The container shares the test machine's kernel: the role must have left it alone.
    before = host.file("/opt/node-samples/swappiness.before").content_string.strip()
    assert host.file("/proc/sys/vm/swappiness").content_string.strip() == before


def test_swap_entries_are_commented_out(host):
    fstab = host.file("/etc/fstab").content_string.splitlines()
    active_swap = [line for line in fstab if not line.lstrip().startswith("#") and " swap " in line]
    assert active_swap == []
    assert "# /swapfile none swap sw 0 0  # disabled by aiplatform.ollama.node_tuning" in fstab
    assert any(line.startswith("# UUID=0a1b2c3d-0000-4000-8000-000000000002 none swap") for line in fstab)
    # an entry that was already disabled keeps its single comment marker
    assert "#/dev/sdb2 none swap sw 0 0" in fstab
    assert "UUID=0a1b2c3d-0000-4000-8000-000000000001 / ext4 errors=remount-ro 0 1" in fstab


def test_swap_target_is_masked(host):
    assert host.run("systemctl is-enabled swap.target").stdout.strip() == "masked"


def test_containerd_memlock_drop_in(host):
    drop_in = host.file("/etc/systemd/system/containerd.service.d/10-ollama-memlock.conf")
    assert drop_in.is_file
    lines = drop_in.content_string.splitlines()
    assert "[Service]" in lines
    assert "LimitMEMLOCK=infinity" in lines


def test_kubelet_cpu_manager_drop_in(host):
    drop_in = host.file("/etc/kubernetes/kubelet.conf.d/50-ollama-cpu-manager.conf")
    assert drop_in.is_file
    content = drop_in.content_string
    assert "kind: KubeletConfiguration" in content
    assert "cpuManagerPolicy: static" in content
    assert 'reservedSystemCPUs: "0"' in content
    assert "topologyManagerPolicy: single-numa-node" in content


def test_governor_and_thp_persisted_through_tmpfiles(host):
    governor = host.file("/etc/tmpfiles.d/ollama-cpu-governor.conf").content_string
    assert "w /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor - - - - performance" in governor
    thp = host.file("/etc/tmpfiles.d/ollama-thp.conf").content_string
    assert "w /sys/kernel/mm/transparent_hugepage/enabled - - - - madvise" in thp


def test_facts_file_holds_the_profile(host):
    facts = json.loads(host.file("/etc/ansible/facts.d/ollama_node.fact").content_string)
    assert facts["physical_cores"] >= 1
    assert facts["sockets"] >= 1
    assert facts["numa_nodes"] >= 1
    assert facts["recommended_num_thread"] == 1  # CPU limit 1000m
    assert facts["cpu_limit"] == 1.0
    assert facts["isa"]["avx2"] is True
    assert facts["memory_budget_bytes"] < facts["memory_total_bytes"]
    assert facts["labels"]["node.aiplatform.io/avx2"] == "true"
    assert "memory_available_bytes" not in facts  # would change every run


def test_host_stays_a_running_systemd(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded")
