"""node_tuning's per-area report (`node_tuning_result.areas.<area>.live` / `.reason`), decided in one filter:
every branch of each area, and a refusal that names the area."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.node_tuning_area import FilterModule

area = FilterModule().filters()["node_tuning_area"]
IN_CONTAINER = "running in a container (podman): kernel settings belong to the host"


@pytest.mark.parametrize(("facts", "live", "reason"), [
    ({"live_ok": False, "swap_active": True, "check_mode": False}, "skipped", IN_CONTAINER),
    ({"live_ok": True, "swap_active": False, "check_mode": False}, "unchanged", "no swap active"),
    ({"live_ok": True, "swap_active": True, "check_mode": True}, "check_mode", ""),
    ({"live_ok": True, "swap_active": True, "check_mode": False, "swapoff_rc": 0}, "applied", ""),
    ({"live_ok": True, "swap_active": True, "check_mode": False, "swapoff_rc": 255,
      "swapoff_stderr": "swapoff: /swap: Cannot allocate memory\n"}, "failed",
     "swapoff -a failed (swapoff: /swap: Cannot allocate memory); swap stays off after the next reboot"),
])
def test_swap(facts, live, reason):
    assert area("swap", container_reason=IN_CONTAINER, **facts) == {"live": live, "reason": reason}


CPUFREQ = {"available": True, "driver": "intel_pstate", "governors": ["performance", "powersave"],
           "current": ["powersave"], "writable": True}


@pytest.mark.parametrize(("requested", "live_ok", "cpufreq", "check_mode", "live", "reason"), [
    (False, True, CPUFREQ, False, "not requested", ""),
    (True, False, CPUFREQ, False, f"skipped: {IN_CONTAINER}", IN_CONTAINER),
    (True, True, {"available": False, "reason": "no cpufreq driver (a VM)"}, False,
     "skipped: no cpufreq driver (a VM)", "no cpufreq driver (a VM)"),
    (True, True, {**CPUFREQ, "governors": ["powersave"]}, False,
     "skipped: cpufreq driver intel_pstate offers only powersave", "cpufreq driver intel_pstate offers only powersave"),
    (True, True, {**CPUFREQ, "writable": False}, False,
     "skipped: cpufreq sysfs files are read-only here", "cpufreq sysfs files are read-only here"),
    (True, True, {**CPUFREQ, "current": ["performance"]}, False, "unchanged", ""),
    (True, True, CPUFREQ, True, "would apply", ""),
    (True, True, CPUFREQ, False, "applied", ""),
])
def test_cpu_governor(requested, live_ok, cpufreq, check_mode, live, reason):
    assert area("cpu_governor", requested=requested, live_ok=live_ok, container_reason=IN_CONTAINER,
                cpufreq=cpufreq, governor="performance", check_mode=check_mode) == {"live": live, "reason": reason}


THP = {"available": True, "writable": True, "enabled": "always"}


@pytest.mark.parametrize(("mode", "live_ok", "thp", "check_mode", "live", "reason"), [
    ("", True, THP, False, "not requested (kernel default kept)", ""),
    ("madvise", False, THP, False, f"skipped: {IN_CONTAINER}", IN_CONTAINER),
    ("madvise", True, {**THP, "available": False}, False,
     "skipped: this kernel has no transparent hugepage support", "this kernel has no transparent hugepage support"),
    ("madvise", True, {**THP, "writable": False}, False,
     "skipped: /sys/kernel/mm/transparent_hugepage is read-only here",
     "/sys/kernel/mm/transparent_hugepage is read-only here"),
    ("always", True, THP, False, "unchanged", ""),
    ("madvise", True, THP, True, "would apply", ""),
    ("madvise", True, THP, False, "applied", ""),
])
def test_thp(mode, live_ok, thp, check_mode, live, reason):
    assert area("thp", mode=mode, live_ok=live_ok, container_reason=IN_CONTAINER, thp=thp,
                check_mode=check_mode) == {"live": live, "reason": reason}


RUNNING = {"LoadState": "loaded", "ExecStart": "{ path=/usr/bin/kubelet ; argv[]=/usr/bin/kubelet "
                                              "--config-dir=/etc/kubernetes/kubelet.conf.d ; }"}


@pytest.mark.parametrize(("changed", "restart_ok", "check_mode", "status", "live", "reason"), [
    (False, False, False, RUNNING, "unchanged", ""),
    (True, True, False, RUNNING, "kubelet restarted with a fresh CPU manager state", ""),
    (True, True, True, RUNNING, "would restart kubelet", ""),
    (True, False, False, RUNNING, "restart required",
     "drain the node, then set node_tuning_kubelet_restart_ok: true (or stop kubelet, remove "
     "/var/lib/kubelet/cpu_manager_state, start kubelet)"),
    (True, False, False, {}, "restart required",
     "kubelet.service is not installed on this host yet; the drop-in waits for it"),
    (False, False, False, {"LoadState": "not-found"}, "unchanged",
     "kubelet.service is not installed on this host yet; the drop-in waits for it"),
    (False, False, False, {"LoadState": "loaded", "ExecStart": "{ path=/usr/bin/kubelet ; }"}, "unchanged",
     "kubelet is not started with --config-dir=/etc/kubernetes/kubelet.conf.d: add it to KUBELET_EXTRA_ARGS "
     "(kubeadm: /etc/default/kubelet) or the drop-in is ignored"),
])
def test_kubelet(changed, restart_ok, check_mode, status, live, reason):
    assert area("kubelet", file_changed=changed, restart_ok=restart_ok, check_mode=check_mode, unit_status=status,
                config_dir="/etc/kubernetes/kubelet.conf.d", state_dir="/var/lib/kubelet") == {
        "live": live, "reason": reason}


def test_an_unknown_area_or_fact_is_named():
    with pytest.raises(AnsibleFilterError, match="node_tuning area 'zram' is not one of sysctl, swap, cpu_governor"):
        area("zram")
    with pytest.raises(AnsibleFilterError, match="node_tuning area thp: .*'governor'"):
        area("thp", mode="", live_ok=True, container_reason="", thp=THP, check_mode=False, governor="performance")


SYSCTL = {"vm.swappiness": {"exists": True, "writable": True, "value": "60"},
          "vm.max_map_count": {"exists": True, "writable": True, "value": "1048576"},
          "kernel.numa_balancing": {"exists": False, "writable": False, "value": None},
          "vm.overcommit_memory": {"exists": True, "writable": False, "value": "0"}}


@pytest.mark.parametrize(("check_mode", "applied"), [(False, "applied: 60 -> 1"), (True, "would apply: 60 -> 1")])
def test_sysctl_says_for_each_key_what_happened_now(check_mode, applied):
    wanted = {"vm.swappiness": 1, "vm.max_map_count": 1048576, "kernel.numa_balancing": 0, "vm.overcommit_memory": 1,
              "vm.dirty_ratio": 10}
    report = area("sysctl", wanted=wanted, live_ok=True, container_reason="", sysctl=SYSCTL, check_mode=check_mode)
    assert report == {"reason": "", "live": {
        "vm.swappiness": applied,
        "vm.max_map_count": "unchanged",
        "kernel.numa_balancing": "skipped: /proc/sys/kernel/numa_balancing does not exist on this kernel",
        "vm.overcommit_memory": "skipped: /proc/sys is read-only here; systemd-sysctl applies the file at boot",
        # a key the profile did not read is one this kernel does not have
        "vm.dirty_ratio": "skipped: /proc/sys/vm/dirty_ratio does not exist on this kernel"}}


def test_sysctl_in_a_container_skips_every_key_with_the_reason():
    report = area("sysctl", wanted={"vm.swappiness": 1}, live_ok=False, container_reason=IN_CONTAINER, sysctl=SYSCTL,
                  check_mode=False)
    assert report == {"live": {"vm.swappiness": f"skipped: {IN_CONTAINER}"}, "reason": ""}
