# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The exposure score of a systemd unit, from `systemd-analyze security UNIT`."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.systemd_security import SystemdSecurityError, exposure

DOCUMENTATION = r"""
name: systemd_exposure
short_description: Read the exposure score and the exposed settings from systemd-analyze security
version_added: 1.2.0
author: AI Platform team
description:
  - Reads the output of C(systemd-analyze security UNIT) (systemd 240 or later) - the overall exposure level,
    0 fully sandboxed to 10 fully exposed, and each setting it marks as adding exposure.
positional: _input
options:
  _input:
    description: The command's standard output.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Score the unit
  ansible.builtin.command: systemd-analyze security --no-pager ollama.service
  register: analyzed
  changed_when: false

- name: Keep it at 2.0 or below
  ansible.builtin.assert:
    that: (analyzed.stdout | aiplatform.ollama.systemd_exposure).score <= 2.0
"""

RETURN = r"""
_value:
  description: C(unit), C(score), C(verdict) and C(exposed), a list of C(setting), C(description), C(exposure).
  type: dict
"""


def systemd_exposure(text):
    try:
        return exposure(text)
    except SystemdSecurityError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """systemd-analyze security's score."""

    def filters(self):
        return {"systemd_exposure": systemd_exposure}
