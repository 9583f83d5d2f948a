# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""inference_check's replica spread check from the role's reads of the pods and their logs."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.replica_spread import (
    DEFAULT_REQUESTS_PER_REPLICA,
    ReplicaSpreadError,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.spread_check import spread_check

DOCUMENTATION = r"""
name: replica_spread_check
short_description: A replica spread check from the reads of the pods and of their logs before and after the requests
version_added: 1.2.0
author: AI Platform team
description:
  - Takes what the C(inference_check) role reads with M(kubernetes.core.k8s_info) (the Ollama server pods) and
    M(kubernetes.core.k8s_log) in a loop (each Ready pod's log before the parallel requests, then after them).
  - Before the requests, says which pods to read (C(ready)) and how many requests to send (C(requests_to_send),
    see P(aiplatform.ollama.replica_spread#filter)).
  - After them (O(after) given), counts how the requests spread with P(aiplatform.ollama.replica_spread#filter)
    and writes the one-line C(report), which says why a spread was not judged when the pods could not be listed,
    none was Ready or no log could be read, each with its fix.
positional: _input
options:
  _input:
    description: The M(kubernetes.core.k8s_info) result for the Ollama server pods; V(none) when not read.
    type: raw
    required: true
  before:
    description:
      - The registered result of the M(kubernetes.core.k8s_log) loop over the pods before the requests, each item a
        pod object; skipped items (pods not Ready) are left out. V(none) before it ran.
    type: raw
  after:
    description:
      - The registered result of the M(kubernetes.core.k8s_log) loop after the requests, each item a pod name.
        V(none) before it ran.
    type: raw
  concurrency:
    description: The parallel requests asked for.
    type: int
    default: 1
  requests_per_replica:
    description: Requests per pod C(requests_to_send) reaches at least with two pods or more.
    type: int
    default: 8
  namespace:
    description: The pods' namespace, for the report.
    type: str
    required: true
  selector:
    description: The pods' label selectors, for the report.
    type: list
    elements: str
    required: true
  kubeconfig:
    description: The kubeconfig used, for the report (empty for the default).
    type: str
    default: ""
  context:
    description: The kubeconfig context used, for the report (empty for the current one).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Report how the parallel requests spread over the replicas
  ansible.builtin.debug:
    msg: "{{ __check.report }}"
  vars:
    __check: >-
      {{ __pods | aiplatform.ollama.replica_spread_check(before=__logs_before, after=__logs_after, concurrency=4,
           namespace='ollama', selector=['app.kubernetes.io/name=ollama']) }}
"""

RETURN = r"""
_value:
  description:
    - C(ready), the names of the Ready pods (terminating ones left out); C(logs_before), the logs read before the
      requests as C({name, log}); C(requests_to_send).
    - After the requests, C(spread), the result of P(aiplatform.ollama.replica_spread#filter) over the pods read
      both times, C(ok) (false when the spread is judged and a Ready replica served none) and C(report); before
      them C(spread) and C(report) are V(none) and C(ok) is true.
  type: dict
"""


def replica_spread_check(pods, before=None, after=None, concurrency=1,
                         requests_per_replica=DEFAULT_REQUESTS_PER_REPLICA, namespace="", selector=(), kubeconfig="",
                         context=""):
    try:
        return spread_check(pods, before, after, concurrency=concurrency, requests_per_replica=requests_per_replica,
                            namespace=namespace, selector=list(selector or []), kubeconfig=kubeconfig or "",
                            context=context or "")
    except ReplicaSpreadError as exc:
        raise AnsibleFilterError(f"replica_spread_check: {exc}") from exc


class FilterModule:
    """replica_spread_check filter."""

    def filters(self):
        return {"replica_spread_check": replica_spread_check}
