# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The decode speed memory bandwidth allows a model on CPU, and how close a measured speed comes to it."""

from __future__ import annotations

import math

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.sizing import (
    DEFAULT_DECODE_EFFICIENCY,
    SizingError,
    decode_tokens_per_s,
)

DOCUMENTATION = r"""
name: decode_roofline
short_description: Decode tokens per second a node's memory bandwidth allows a model, and a measured speed against it
version_added: 1.2.0
author: AI Platform team
description:
  - On CPU every generated token reads all of the model's weights once, so decode speed is bound by the memory
    bandwidth over the bytes read per token (about the weights' size), the roofline. Published CPU runs reach
    55-75 % of it; the expected speed is the roofline times O(efficiency).
  - The bandwidth is what M(aiplatform.ollama.node_profile_facts) measures (C(memory_bandwidth.bytes_per_s)), which
    the C(node_tuning) role annotates on the Node as C(node.aiplatform.io/memory-bandwidth).
  - Given O(measured_tokens_per_s) (for example C(eval_tokens_per_s) of M(aiplatform.ollama.ollama_health)), also the
    measured speed as a percentage of the roofline.
positional: _input, bytes_per_token
options:
  _input:
    description:
      - Memory bandwidth in bytes per second, a number or a string of one (a Node annotation is a string).
    type: raw
    required: true
  bytes_per_token:
    description:
      - Bytes read per generated token, about the model's weights. A number, or the result of
        M(aiplatform.ollama.ollama_model_info) (its C(weights_bytes) is used).
    type: raw
    required: true
  efficiency:
    description: Share of the roofline reached, for C(expected_tokens_per_s); greater than 0, at most 1.
    type: float
    default: 0.65
  measured_tokens_per_s:
    description: A measured decode speed to set against the roofline; omit for the prediction only.
    type: float
  strict:
    description:
      - V(false) returns bad input as C(error) (and C(summary) saying why nothing is reported) instead of failing,
        for a report that must never fail the play.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Roofline of a 47.4 GB model on a node streaming 40 GB/s
  ansible.builtin.debug:
    msg: "{{ 40e9 | aiplatform.ollama.decode_roofline(47.4e9) }}"
    # roofline_tokens_per_s 0.84, expected_tokens_per_s 0.55

- name: From the node profile and the model's header
  ansible.builtin.debug:
    msg: >-
      {{ (ollama_node_profile.memory_bandwidth.bytes_per_s
          | aiplatform.ollama.decode_roofline(model_info)).expected_tokens_per_s }} tok/s expected

- name: A probe's decode speed against the roofline of the Node's annotated bandwidth, never failing
  ansible.builtin.debug:
    msg: >-
      {{ (node.metadata.annotations['node.aiplatform.io/memory-bandwidth']
          | aiplatform.ollama.decode_roofline(probe.size, measured_tokens_per_s=probe.eval_tokens_per_s,
                                              strict=false)).summary }}
"""

RETURN = r"""
_value:
  description: The roofline, the expected speed and, with O(measured_tokens_per_s), the measured share.
  type: dict
  contains:
    bandwidth_bytes_per_s:
      description: The bandwidth used.
      type: float
    bytes_per_token:
      description: The bytes read per token used.
      type: int
    roofline_tokens_per_s:
      description: Bandwidth over bytes per token, the speed no decode on this node exceeds.
      type: float
    efficiency:
      description: The share of the roofline assumed for the expected speed.
      type: float
    expected_tokens_per_s:
      description: The roofline times O(efficiency).
      type: float
    measured_tokens_per_s:
      description: The measured speed.
      type: float
      returned: with O(measured_tokens_per_s)
    roofline_pct:
      description: The measured speed in percent of the roofline, one decimal.
      type: float
      returned: with O(measured_tokens_per_s)
    summary:
      description: The figures in one line, for a report.
      type: str
      sample: "decode 10.60 tok/s is 38.9 % of the roofline 27.24 tok/s (29.0 GB/s / 1.07 GB read per token)"
    error:
      description: What was wrong with the input; the only other key is C(summary).
      type: str
      returned: with O(strict=false) and bad input
"""


def _bytes_per_token(value):
    if isinstance(value, dict):
        if value.get("weights_bytes") is None:
            raise AnsibleFilterError(
                "decode_roofline: bytes_per_token is a dict without weights_bytes: pass the model's size in bytes "
                "or the result of aiplatform.ollama.ollama_model_info"
            )
        return value["weights_bytes"]
    return value


def _number(name, value):
    if isinstance(value, bool):
        raise AnsibleFilterError(f"decode_roofline: {name} must be a number, got the boolean {value!r}")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise AnsibleFilterError(
            f"decode_roofline: {name} must be a finite number, got {value!r}"
            + (" (bytes per second, as node_profile_facts measures it)" if name == "the bandwidth" else "")
        )
    return number


def _size(count):
    return f"{count / 1e9:.2f} GB" if count >= 1e8 else f"{count / 1e6:.1f} MB"


def decode_roofline(bandwidth, bytes_per_token, efficiency=DEFAULT_DECODE_EFFICIENCY, measured_tokens_per_s=None,
                    strict=True):
    try:
        return _roofline(bandwidth, bytes_per_token, efficiency, measured_tokens_per_s)
    except AnsibleFilterError as exc:
        if strict:
            raise
        return {"error": str(exc), "summary": f"decode roofline not reported: {exc}"}


def _roofline(bandwidth, bytes_per_token, efficiency, measured_tokens_per_s):
    bandwidth = _number("the bandwidth", bandwidth)
    per_token = _number("bytes_per_token", _bytes_per_token(bytes_per_token))
    share = _number("efficiency", efficiency)
    try:
        roofline = decode_tokens_per_s(bandwidth, per_token, 1.0)
        expected = decode_tokens_per_s(bandwidth, per_token, share)
    except SizingError as exc:
        raise AnsibleFilterError(f"decode_roofline: {exc}") from exc
    result = {
        "bandwidth_bytes_per_s": bandwidth,
        "bytes_per_token": int(per_token),
        "roofline_tokens_per_s": round(roofline, 3),
        "efficiency": share,
        "expected_tokens_per_s": round(expected, 3),
    }
    ratio = f"{bandwidth / 1e9:.1f} GB/s / {_size(per_token)} read per token"
    if measured_tokens_per_s is None:
        result["summary"] = (f"roofline {roofline:.2f} tok/s, {expected:.2f} tok/s expected at {share:.0%} of it "
                             f"({ratio})")
        return result
    measured = _number("measured_tokens_per_s", measured_tokens_per_s)
    if measured < 0:
        raise AnsibleFilterError(f"decode_roofline: measured_tokens_per_s must not be negative, got {measured}")
    result["measured_tokens_per_s"] = measured
    result["roofline_pct"] = round(100.0 * measured / roofline, 1)
    result["summary"] = (f"decode {measured:.2f} tok/s is {result['roofline_pct']:.1f} % of the roofline "
                         f"{roofline:.2f} tok/s ({ratio})")
    return result


class FilterModule:
    """Decode roofline filter."""

    def filters(self):
        return {"decode_roofline": decode_roofline}
