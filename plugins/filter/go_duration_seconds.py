# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Go/Flux duration to seconds."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.go_duration import duration_seconds

DOCUMENTATION = r"""
name: go_duration_seconds
short_description: Convert a Go or Flux duration to seconds
version_added: 1.1.0
author: AI Platform team
description:
  - Parses a duration as Flux and Kubernetes write them (C(90s), C(10m), C(1h30m), C(500ms)) and returns
    the seconds it stands for, so a wait can be made at least as long as Flux may take.
  - Anything else is refused with an error that names the value.
positional: _input
options:
  _input:
    description: The duration.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Seconds of a HelmRelease timeout
  ansible.builtin.debug:
    msg: "{{ '1h30m' | aiplatform.ollama.go_duration_seconds }}"   # 5400.0
"""

RETURN = r"""
_value:
  description: The duration in seconds.
  type: float
"""


def go_duration_seconds(value):
    try:
        return duration_seconds(value)
    except ValueError as exc:
        raise AnsibleFilterError(f"go_duration_seconds: {exc}") from None


class FilterModule:
    """Duration filters."""

    def filters(self):
        return {"go_duration_seconds": go_duration_seconds}
