# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Why a workload did not become ready, from the objects a failed wait collected."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_status import explain

DOCUMENTATION = r"""
name: k8s_explain
short_description: Name the cause of a workload that did not become ready
version_added: 1.1.0
author: AI Platform team
description:
  - Reads what a failed wait collected (a HelmRelease or a Job, its pods, claims and events) and
    returns the one cause that explains it, a sentence saying so, the evidence, and a report in
    sections (release or Job, claims, pods, events) to print line by line.
  - Causes, most specific first - C(claim_pending), C(unschedulable), C(oom_killed), C(image_pull),
    C(crash_loop), C(container_failed), C(mount_failed), C(job_failed), C(release_failed), C(not_ready).
positional: _input
options:
  _input:
    description:
      - A dict with any of C(release), C(job) (objects), C(pods), C(claims), C(events) (lists) and
        C(logs) (pod name to log lines).
    type: dict
    required: true
  since:
    description: Ignore events before this RFC 3339 time, so an older, fixed failure does not mask the current one.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Say why the release is not Ready
  ansible.builtin.debug:
    msg: "{{ {'release': hr, 'pods': pods, 'events': events} | aiplatform.ollama.k8s_explain(since=start) }}"
"""

RETURN = r"""
_value:
  description: C(cause), C(reason) (one sentence), C(evidence) (lines) and C(report) (lines).
  type: dict
"""


def k8s_explain(collected, since=""):
    if not isinstance(collected, dict):
        raise AnsibleFilterError(
            f"k8s_explain: expected a dict of release/job/pods/claims/events/logs, got {type(collected).__name__}")
    unknown = set(collected) - {"release", "job", "pods", "claims", "events", "logs"}
    if unknown:
        raise AnsibleFilterError(
            f"k8s_explain: unknown keys {sorted(unknown)}; use release, job, pods, claims, events, logs")
    return explain(since=since or "", **collected)


class FilterModule:
    """Kubernetes status filters."""

    def filters(self):
        return {"k8s_explain": k8s_explain}
