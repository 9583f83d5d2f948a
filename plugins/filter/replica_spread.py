# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How parallel requests spread over an Ollama Deployment's replicas, from the pods' request logs."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.replica_spread import (
    DEFAULT_METHOD,
    DEFAULT_PATH,
    DEFAULT_REQUESTS_PER_REPLICA,
    ReplicaSpreadError,
    spread,
)

DOCUMENTATION = r"""
name: replica_spread
short_description: How requests spread over an Ollama Deployment's replicas, counted in the pods' logs
version_added: 1.2.0
author: AI Platform team
description:
  - Ollama answers its API through gin's default logger, which writes one line per request when it ends
    (C([GIN] 2026/12/04 - 20:31:02 | 200 |  1.234567s |     10.244.0.7 | POST     "/api/chat")).
  - Given each pod's log read before a batch of requests and after it, counts per pod the O(method) requests to
    O(path) logged in between, split by status (2xx or not), whatever the Service, kube-proxy or a gateway did.
  - A pod whose log after the batch does not begin with its log before (the container restarted, or the kubelet
    rotated the log) is counted on its log after the batch alone; a pod not read before, on its whole log.
  - The spread is judged (C(judged)) with two pods or more and at least as many requests as pods; a judged spread
    where some pod served none (C(idle)) is not C(ok). One pod is reported, never failed.
  - C(requests_to_send) is how many parallel requests a check of these pods sends, O(concurrency) raised to
    O(requests_per_replica) per pod with two pods or more. With N pods and k requests each sent to a pod chosen
    at random, the chance that some pod gets none is at most N * (1 - 1/N)^k; with 8 per pod that is
    2 * 2^-16 (0.003 %) for 2 pods and below N * e^-8 (0.034 % per pod) for any N.
  - The C(inference_check) role reads the logs with M(kubernetes.core.k8s_log) and fails when the spread is not ok.
positional: _input, before
options:
  _input:
    description:
      - The Ready pods' logs after the requests, a list of dicts with C(name) (the pod) and C(log) (the text
        M(kubernetes.core.k8s_log) returns as C(log), not C(log_lines)).
    type: list
    elements: dict
    required: true
  before:
    description:
      - The same pods' logs read before the requests, in the same shape. Pods listed here and missing from the
        input are returned in C(gone) and not judged.
    type: list
    elements: dict
    default: []
  path:
    description: The request path to count (the query string of a logged request is ignored).
    type: str
    default: /api/chat
  method:
    description: The request method to count; other methods on O(path) (a C(GET) answered 405) are not counted.
    type: str
    default: POST
  concurrency:
    description:
      - The parallel requests asked for, for C(requests_to_send). A value below 1 is returned as it is, for the
        module that sends the requests to refuse.
    type: int
    default: 1
  requests_per_replica:
    description: Requests per pod C(requests_to_send) reaches at least with two pods or more.
    type: int
    default: 8
"""

EXAMPLES = r"""
- name: How many parallel requests reach every replica of those Ready before the batch
  ansible.builtin.set_fact:
    requests: "{{ (before | aiplatform.ollama.replica_spread(before, concurrency=2)).requests_to_send }}"
    # 16 with two pods, 24 with three; 2 with one pod

- name: How they spread, from the logs read before and after the batch
  ansible.builtin.set_fact:
    spread: "{{ after | aiplatform.ollama.replica_spread(before) }}"

- name: Fail naming the replicas that served none
  ansible.builtin.assert:
    that: spread.ok
    fail_msg: "{{ spread.idle | join(', ') }} served no request: {{ spread.summary }}"
"""

RETURN = r"""
_value:
  description: The requests each pod served, their spread and the verdict.
  type: dict
  contains:
    path:
      description: The path counted.
      type: str
    pods:
      description:
        - One dict per pod of the input, in its order, with C(name), C(requests) (all statuses), C(succeeded)
          (2xx), C(errors) (any other status), C(share) (of the total, 0 to 1, four decimals; 0 when nothing was
          counted) and C(log) (C(continued), C(restarted) or C(new)).
      type: list
      elements: dict
    total:
      description: Requests counted over all pods.
      type: int
    min_share:
      description: The smallest share of a pod; 0 when nothing was counted.
      type: float
    idle:
      description: The pods that served no request.
      type: list
      elements: str
    gone:
      description: Pods of O(before) missing from the input.
      type: list
      elements: str
    judged:
      description: Two pods or more, and at least as many requests as pods.
      type: bool
    ok:
      description: False when the spread is judged and some pod served none.
      type: bool
    requests_to_send:
      description: How many parallel requests a check of these pods sends.
      type: int
    summary:
      description: The counts in one line, for a report.
      type: str
      sample: "16 /api/chat requests over 2 pods: ollama-5c9d8-2xkqp 9 (56 %); ollama-5c9d8-7fjwm 7 (44 %);
        min share 44 %"
"""


def replica_spread(after, before=None, path=DEFAULT_PATH, concurrency=1,
                   requests_per_replica=DEFAULT_REQUESTS_PER_REPLICA, method=DEFAULT_METHOD):
    try:
        return spread(after, [] if before is None else before, path, concurrency, requests_per_replica, method)
    except ReplicaSpreadError as exc:
        raise AnsibleFilterError(f"replica_spread: {exc}") from exc


class FilterModule:
    """Replica spread filter."""

    def filters(self):
        return {"replica_spread": replica_spread}
