# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The service catalogue's five runbooks as verdicts."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.runbooks import verdicts

DOCUMENTATION = r"""
name: runbook_verdicts
short_description: Judge the service catalogue's five runbooks from what a diagnosis gathered
version_added: 1.1.0
author: AI Platform team
description:
  - For each runbook (C(pull_stall), C(oom_killed), C(pvc_pending), C(gateway_timeout),
    C(model_missing)) returns a verdict - C(ok), C(failing) or C(unknown) - with the cause in one
    sentence, the evidence it rests on and the fix (a variable to change or a command to run).
positional: _input
options:
  _input:
    description:
      - A dict with any of C(release) (the HelmRelease), C(pods), C(claim), C(classes) (StorageClasses),
        C(events), C(endpoints) (the Service's EndpointSlices; omit when not read), C(probes)
        (M(aiplatform.ollama.ollama_health) results with C(name) and C(url)) and C(names)
        (C(namespace), C(claim), C(release), C(model), optional C(memory_need)).
    type: dict
    required: true
  since:
    description: Ignore events before this RFC 3339 time when newer ones exist.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Judge the runbooks
  ansible.builtin.set_fact:
    verdicts: "{{ gathered | aiplatform.ollama.runbook_verdicts }}"
"""

RETURN = r"""
_value:
  description:
    - One dict per runbook, in the catalogue's order, with C(runbook), C(title), C(status), C(cause),
      C(evidence) and C(fix).
  type: list
  elements: dict
"""

_KEYS = {"release", "pods", "claim", "classes", "events", "endpoints", "probes", "names"}


def runbook_verdicts(gathered, since=""):
    if not isinstance(gathered, dict):
        raise AnsibleFilterError(f"runbook_verdicts: expected a dict, got {type(gathered).__name__}")
    unknown = set(gathered) - _KEYS
    if unknown:
        raise AnsibleFilterError(f"runbook_verdicts: unknown keys {sorted(unknown)}; use {', '.join(sorted(_KEYS))}")
    names = gathered.get("names") or {}
    missing = {"namespace", "claim", "release", "model"} - set(names)
    if missing:
        raise AnsibleFilterError(f"runbook_verdicts: names lacks {sorted(missing)}")
    return verdicts(since=since or "", **gathered)


class FilterModule:
    """Runbook filters."""

    def filters(self):
        return {"runbook_verdicts": runbook_verdicts}
