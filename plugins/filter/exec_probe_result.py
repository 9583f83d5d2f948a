# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The diagnosis' in-cluster probe, as an ollama_health result."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.exec_probe import parse

DOCUMENTATION = r"""
name: exec_probe_result
short_description: Read the diagnosis' in-cluster probe into an ollama_health-shaped result
version_added: 1.2.0
author: AI Platform team
description:
  - The C(diagnose) role runs its probe script with M(kubernetes.core.k8s_exec) in a pod the collection's
    NetworkPolicy admits. This filter turns one such exec result into the result
    M(aiplatform.ollama.ollama_health) gives (C(healthy), C(passed), C(failed_level), C(reason)), with the
    endpoint's C(name) and C(url), so the runbook verdicts read both alike.
positional: _input
options:
  _input:
    description: A registered M(kubernetes.core.k8s_exec) loop result whose C(item) is the endpoint (C(name), C(url)).
    type: dict
    required: true
  pod:
    description: The probe pod's name, for the evidence.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: The probes as ollama_health results
  ansible.builtin.set_fact:
    probes: "{{ execs.results | map('aiplatform.ollama.exec_probe_result', pod=probe_pod) | list }}"
"""

RETURN = r"""
_value:
  description: C(name), C(url), C(via), C(healthy), C(passed) (levels), C(failed_level) and C(reason).
  type: dict
"""


def exec_probe_result(result, pod=""):
    if not isinstance(result, dict):
        raise AnsibleFilterError(f"exec_probe_result: expected a k8s_exec result, got {type(result).__name__}")
    endpoint = result.get("item") or {}
    return parse(result.get("stdout") or "", int(result.get("rc") or 0), result.get("stderr") or "",
                 name=endpoint.get("name", ""), url=endpoint.get("url", ""), pod=pod)


class FilterModule:
    """In-cluster probe filter."""

    def filters(self):
        return {"exec_probe_result": exec_probe_result}
