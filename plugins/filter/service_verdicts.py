# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The runbooks of Ollama run as a systemd service, as verdicts."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.service_runbooks import service_verdicts as _verdicts

DOCUMENTATION = r"""
name: service_verdicts
short_description: Judge the runbooks of Ollama run as a systemd service from what a diagnosis read on the host
version_added: 1.2.0
author: AI Platform team
description:
  - For each runbook (C(unit_failed), C(oom_killed), C(model_missing)) returns a verdict - C(ok), C(failing)
    or C(unknown) - with the cause in one sentence, the evidence and the fix, in the format of
    P(aiplatform.ollama.runbook_verdicts#filter).
positional: _input
options:
  _input:
    description:
      - A dict with any of C(unit) (the unit's C(systemctl show) properties), C(journal) and C(kernel) (log lines),
        C(store) (an M(aiplatform.ollama.ollama_store_model) C(state=verified) result), C(probe) (an
        M(aiplatform.ollama.ollama_health) result) and C(names) (C(unit), C(model), optional C(memory_need)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Judge the service's runbooks
  ansible.builtin.debug:
    msg: >-
      {{ {'unit': unit.status, 'journal': journal.stdout_lines, 'probe': probe}
         | aiplatform.ollama.service_verdicts }}
"""

RETURN = r"""
_value:
  description: One verdict per runbook - C(runbook), C(title), C(status), C(cause), C(evidence), C(fix).
  type: list
  elements: dict
"""


def service_verdicts(gathered):
    gathered = gathered or {}
    return _verdicts(unit=gathered.get("unit"), journal=gathered.get("journal"), kernel=gathered.get("kernel"),
                     store=gathered.get("store"), probe=gathered.get("probe"), names=gathered.get("names"))


class FilterModule:
    """Service runbook verdicts."""

    def filters(self):
        return {"service_verdicts": service_verdicts}
