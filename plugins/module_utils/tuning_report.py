# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What node_tuning reports for each area it tunes: whether the setting took effect now (`live`) and,
where it did not or needs something more, why (`reason`). The setting itself is always persisted; a
live apply that cannot happen (in a container, without cpufreq, on a read-only sysfs) is skipped and
said so, never silently left out."""

from __future__ import annotations

GIB = 1024 ** 3
AREAS = ("sysctl", "swap", "cpu_governor", "thp", "kubelet")


class TuningReportError(ValueError):
    pass


def _opt_in_live(requested, reason, unchanged, check_mode, not_requested):
    """The live apply of an opt-in area (governor, THP): the first of these that holds."""
    if not requested:
        return not_requested
    if reason:
        return f"skipped: {reason}"
    if unchanged:
        return "unchanged"
    return "would apply" if check_mode else "applied"


def sysctl_report(wanted, live_ok, container_reason, sysctl, check_mode):
    """Each kernel setting now, key by key (the drop-in file holds them all for the next boot): skipped
    in a container, on a kernel without the key or a read-only /proc/sys, else whether it moved.
    `sysctl` is the profile's: key -> exists, writable, value."""
    live = {}
    for key, value in wanted.items():
        now = sysctl.get(key) or {}
        if not live_ok:
            live[key] = f"skipped: {container_reason}"
        elif not now.get("exists"):
            live[key] = f"skipped: /proc/sys/{key.replace('.', '/')} does not exist on this kernel"
        elif not now.get("writable"):
            live[key] = "skipped: /proc/sys is read-only here; systemd-sysctl applies the file at boot"
        elif now.get("value") == str(value):
            live[key] = "unchanged"
        else:
            live[key] = f"{'would apply' if check_mode else 'applied'}: {now.get('value')} -> {value}"
    return {"live": live, "reason": ""}


def swap_report(live_ok, container_reason, swap_active, check_mode, swapoff_rc=None, swapoff_stderr=""):
    """Swap off now: skipped in a container, nothing to do without active swap, else swapoff's outcome
    (a failed swapoff leaves swap off after the next reboot, the entries being commented out)."""
    if not live_ok:
        return {"live": "skipped", "reason": container_reason}
    if not swap_active:
        return {"live": "unchanged", "reason": "no swap active"}
    failed = swapoff_rc not in (None, 0)
    reason = (f"swapoff -a failed ({(swapoff_stderr or '').strip()}); swap stays off after the next reboot"
              if failed else "")
    if check_mode:
        return {"live": "check_mode", "reason": reason}
    return {"live": "applied" if swapoff_rc == 0 else "failed", "reason": reason}


def cpu_governor_report(requested, live_ok, container_reason, cpufreq, governor, check_mode):
    """The governor now: why it cannot be written here (the first obstacle), else whether it already is."""
    if not live_ok:
        reason = container_reason
    elif not cpufreq.get("available"):
        reason = cpufreq.get("reason", "")
    elif governor not in cpufreq.get("governors", []):
        reason = f"cpufreq driver {cpufreq.get('driver')} offers only {', '.join(cpufreq.get('governors', []))}"
    elif not cpufreq.get("writable", False):
        reason = "cpufreq sysfs files are read-only here"
    else:
        reason = ""
    live = _opt_in_live(requested, reason, cpufreq.get("current") == [governor], check_mode, "not requested")
    return {"live": live, "reason": reason}


def thp_report(mode, live_ok, container_reason, thp, check_mode):
    """The transparent hugepage mode now; "" leaves the kernel's choice alone."""
    if not live_ok:
        reason = container_reason
    elif not thp.get("available"):
        reason = "this kernel has no transparent hugepage support"
    elif not thp.get("writable"):
        reason = "/sys/kernel/mm/transparent_hugepage is read-only here"
    else:
        reason = ""
    live = _opt_in_live(mode != "", reason, thp.get("enabled") == mode, check_mode,
                        "not requested (kernel default kept)")
    return {"live": live, "reason": reason}


def kubelet_report(file_changed, restart_ok, check_mode, unit_status, config_dir, state_dir):
    """The kubelet drop-in: whether kubelet runs with it (restarted here, or a restart to do), and what
    keeps it from applying (kubelet not installed yet, or started without --config-dir)."""
    if not file_changed:
        live = "unchanged"
    elif restart_ok and not check_mode:
        live = "kubelet restarted with a fresh CPU manager state"
    elif restart_ok:
        live = "would restart kubelet"
    else:
        live = "restart required"
    status = unit_status or {}
    if status.get("LoadState", "") != "loaded":
        reason = "kubelet.service is not installed on this host yet; the drop-in waits for it"
    elif "--config-dir" not in (status.get("ExecStart") or ""):
        reason = (f"kubelet is not started with --config-dir={config_dir}: add it to KUBELET_EXTRA_ARGS "
                  "(kubeadm: /etc/default/kubelet) or the drop-in is ignored")
    elif file_changed and not restart_ok:
        reason = (f"drain the node, then set node_tuning_kubelet_restart_ok: true (or stop kubelet, remove "
                  f"{state_dir}/cpu_manager_state, start kubelet)")
    else:
        reason = ""
    return {"live": live, "reason": reason}


def profile_summary(profile, container="", pod_cpu_limit=""):
    """The node's profile as node_tuning prints it: CPU, memory and platform, num_thread, bandwidth."""
    isa = " ".join(name for name, present in profile["isa"].items() if present) or "baseline"
    if container:
        platform = f"container {container}"
    elif profile["virtualization"].get("vm"):
        platform = f"VM {profile['virtualization']['vm']}"
    else:
        platform = "bare metal"
    cpufreq = profile["cpufreq"].get("driver") if profile["cpufreq"].get("available") else "absent"
    bandwidth, status = profile.get("memory_bandwidth"), profile["memory_bandwidth_status"]
    if bandwidth:
        source = status["source"] if status["source"] == "measured" else f"{status['source']}: {status['reason']}"
        measured = (f"memory bandwidth {bandwidth['gb_per_s']} GB/s (STREAM copy, best of {bandwidth['repetitions']}, "
                    f"{bandwidth['workers']} worker(s) on CPUs {','.join(map(str, bandwidth['cpus']))}; {source})")
    else:
        measured = f"memory bandwidth not measured ({status['source']}: {status['reason']})"
    return [
        f"{profile['cpu_model']}: {profile['sockets']} socket(s), {profile['physical_cores']} physical cores, "
        f"{profile['threads_per_core']} thread(s)/core, {profile['numa_nodes']} NUMA node(s), ISA {isa}",
        f"memory {round(profile['memory_total_bytes'] / GIB, 1)} GiB, budget for the Ollama pod "
        f"{profile['memory_budget_gib']} GiB; swap {'on' if profile['swap_active'] else 'off'}; cpufreq {cpufreq}; "
        f"THP {profile['thp'].get('enabled')}; {platform}",
        f"num_thread {profile['recommended_num_thread']} for CPU limit {pod_cpu_limit or 'unset (one NUMA node)'}",
        measured,
    ]


_REPORTS = {"sysctl": sysctl_report, "swap": swap_report, "cpu_governor": cpu_governor_report, "thp": thp_report,
            "kubelet": kubelet_report}


def area_report(area, **facts):
    """`{"live": ..., "reason": ...}` for one of AREAS, from the facts its function takes."""
    if area not in _REPORTS:
        raise TuningReportError(f"node_tuning area {area!r} is not one of {', '.join(AREAS)}")
    try:
        return _REPORTS[area](**facts)
    except TypeError as exc:  # a missing or unknown fact: name the area with Python's message
        raise TuningReportError(f"node_tuning area {area}: {exc}") from exc
