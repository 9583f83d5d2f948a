# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""node_tuning's report of one area: whether the setting took effect now, and why not."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.tuning_report import TuningReportError, area_report

DOCUMENTATION = r"""
name: node_tuning_area
short_description: Whether a node_tuning area took effect now, and why not
version_added: 1.2.0
author: AI Platform team
description:
  - The C(live) and C(reason) of one area of C(node_tuning_result.areas), the report of the
    C(aiplatform.ollama.node_tuning) role, from the node's profile and the outcome of the area's tasks.
  - The setting itself is always persisted; a live apply that cannot happen here (in a container, without
    cpufreq, on a read-only sysfs, without kubelet) is skipped and the reason says so.
  - V(sysctl) takes O(wanted), O(live_ok), O(container_reason), O(sysctl) and O(check_mode), and its C(live) is
    a status per key;
    V(swap) takes O(live_ok), O(container_reason), O(swap_active), O(check_mode), O(swapoff_rc) and O(swapoff_stderr);
    V(cpu_governor) O(requested), O(live_ok), O(container_reason), O(cpufreq), O(governor) and O(check_mode);
    V(thp) O(mode), O(live_ok), O(container_reason), O(thp) and O(check_mode);
    V(kubelet) O(file_changed), O(restart_ok), O(check_mode), O(unit_status), O(config_dir) and O(state_dir).
positional: _input
options:
  _input:
    description: The area.
    type: str
    choices: [sysctl, swap, cpu_governor, thp, kubelet]
    required: true
  wanted:
    description: The kernel settings to apply, key to value (C(node_tuning_sysctl) and the role's own).
    type: dict
  sysctl:
    description: The profile's C(sysctl), key to C(exists), C(writable) and C(value).
    type: dict
  live_ok:
    description: Whether settings can be applied live on this host (not in a container).
    type: bool
  container_reason:
    description: Why they cannot, when O(live_ok) is false.
    type: str
  check_mode:
    description: Whether the run is in check mode.
    type: bool
  swap_active:
    description: Whether swap is active (the profile's C(swap_active)).
    type: bool
  swapoff_rc:
    description: The exit status of C(swapoff -a); V(none) when it did not run.
    type: int
  swapoff_stderr:
    description: Its error output.
    type: str
  requested:
    description: Whether the governor is to be set (C(node_tuning_cpu_governor_enabled)).
    type: bool
  cpufreq:
    description: The profile's C(cpufreq) (C(available), C(reason), C(driver), C(governors), C(current), C(writable)).
    type: dict
  governor:
    description: The governor to set (C(node_tuning_cpu_governor)).
    type: str
  mode:
    description: The transparent hugepage mode to set (C(node_tuning_thp_mode)); empty leaves the kernel's.
    type: str
  thp:
    description: The profile's C(thp) (C(available), C(writable), C(enabled)).
    type: dict
  file_changed:
    description: Whether the kubelet drop-in changed in this run.
    type: bool
  restart_ok:
    description: Whether kubelet may be restarted (C(node_tuning_kubelet_restart_ok)).
    type: bool
  unit_status:
    description: The kubelet unit's status (C(LoadState), C(ExecStart)), empty when unknown.
    type: dict
  config_dir:
    description: The kubelet drop-in directory (C(node_tuning_kubelet_config_dir)).
    type: str
  state_dir:
    description: kubelet's state directory (C(node_tuning_kubelet_state_dir)).
    type: str
"""

EXAMPLES = r"""
- name: The THP area on a host whose sysfs is read-only
  ansible.builtin.debug:
    msg: >-
      {{ 'thp' | aiplatform.ollama.node_tuning_area(mode='madvise', live_ok=true, container_reason='',
           thp={'available': true, 'writable': false, 'enabled': 'always'}, check_mode=false) }}
"""

RETURN = r"""
_value:
  description:
    - C(live) is what happened now, for example V(applied), V(unchanged), or C(skipped) and the reason; for
      V(sysctl), that status for each key.
    - C(reason) is why it did not take effect, or what is left to do; empty when nothing.
  type: dict
"""


def node_tuning_area(area, **facts):
    try:
        return area_report(area, **facts)
    except TuningReportError as exc:
        raise AnsibleFilterError(f"node_tuning_area: {exc}") from exc


class FilterModule:
    """node_tuning area report filter."""

    def filters(self):
        return {"node_tuning_area": node_tuning_area}
