# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Why a workload did not become ready, from what the runbook diagnosis gathered."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_status import explain_evidence

DOCUMENTATION = r"""
name: k8s_explain_evidence
short_description: Name the cause of a failed wait from what the diagnose role gathered
version_added: 1.2.0
author: AI Platform team
description:
  - The cause, reason, evidence and report of the P(aiplatform.ollama.k8s_explain#filter) filter, read from the
    C(diagnose_evidence) (and, for a Job, C(diagnose_job_evidence)) facts of the C(diagnose) role, so a
    failed wait reads the cluster once for its runbook verdicts and its cause alike.
  - For a HelmRelease - the release, its pods, the claim and the events of both namespaces. For a Job - the
    Job, its own pods and their logs, the claim and the events of the Job's namespace.
positional: _input
options:
  _input:
    description: The C(diagnose_evidence) fact (release, pods, claim, events); empty where the diagnosis could not run.
    type: dict
    required: true
  since:
    description: Ignore events before this RFC 3339 time (the run's start), so an older, fixed failure masks no new one.
    type: str
    default: ""
  job:
    description: The name of the Job whose wait failed; empty where it is the HelmRelease's.
    type: str
    default: ""
  job_evidence:
    description: The C(diagnose_job_evidence) fact - C(job), C(pods) and C(logs) (pod name to log lines).
    type: dict
    default: {}
  claim:
    description:
      - Whether the claim is the workload's to explain.
      - False where the chart makes its own claim; its pods' events tell what holds it up.
    type: bool
    default: true
"""

EXAMPLES = r"""
# after the diagnose role's failed_wait entry point read the cluster for the seed Job seed-1
- name: Work out why the seed Job did not complete
  ansible.builtin.set_fact:
    explained: >-
      {{ diagnose_evidence
         | aiplatform.ollama.k8s_explain_evidence(job='seed-1', job_evidence=diagnose_job_evidence) }}
"""

RETURN = r"""
_value:
  description:
    - What the P(aiplatform.ollama.k8s_explain#filter) filter returns - C(cause), C(reason) (one sentence),
      C(evidence) (lines) and C(report) (lines to print).
  type: dict
"""


def k8s_explain_evidence(evidence, job="", job_evidence=None, claim=True, since=""):
    for name, value in (("diagnose_evidence", evidence), ("job_evidence", job_evidence)):
        if value is not None and not isinstance(value, dict):
            raise AnsibleFilterError(f"k8s_explain_evidence: {name} must be a dict, got {type(value).__name__}")
    return explain_evidence(evidence, job=job or "", job_evidence=job_evidence, claim=boolean(claim, strict=False),
                            since=since or "")


class FilterModule:
    """Kubernetes status filters."""

    def filters(self):
        return {"k8s_explain_evidence": k8s_explain_evidence}
