# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The diagnosis' in-cluster probe (roles/diagnose/files/probe.sh), read into an ollama_health result.

The probe runs curl in a pod the NetworkPolicy admits and prints, per step, a line
"@@step NAME CURL_EXIT HTTP_STATUS" and the start of the answer. Its result has the shape of
ollama_health's (healthy, passed, failed_level, reason), so the runbook verdicts read both alike.
"""

from __future__ import annotations

import json

# probe step -> the ollama_health levels it proves
_LEVELS = {"version": ("reachable", "version"), "model": ("model",), "generate": ("generate",)}
_EXCERPT = 300


def _steps(stdout: str) -> list:
    steps = []
    for line in stdout.splitlines():
        if line.startswith("@@step "):
            parts = line.split()
            if len(parts) == 4 and parts[1] in _LEVELS and parts[2].isdigit() and parts[3].isdigit():
                steps.append({"name": parts[1], "curl": int(parts[2]), "status": int(parts[3]), "body": []})
                continue
        if steps:
            steps[-1]["body"].append(line)
    return [{**s, "body": "\n".join(s["body"]).strip()} for s in steps]


def _error_text(body: str) -> str:
    """Ollama's {"error": "..."} when the answer is one, else the answer's start."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:_EXCERPT]
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])[:_EXCERPT]
    return body[:_EXCERPT]


def parse(stdout: str, rc: int = 0, stderr: str = "", name: str = "", url: str = "", pod: str = "") -> dict:
    """One probe result from the probe's output and the exec's exit code and stderr."""
    result = {"name": name, "url": url, "via": f"pod {pod}" if pod else "a pod in the cluster",
              "healthy": False, "passed": [], "failed_level": None, "reason": ""}
    steps = _steps(stdout or "")
    if not steps:
        detail = (stderr or stdout or "").strip()[:_EXCERPT] or "no output"
        result.update(failed_level="reachable",
                      reason=f"the probe did not run in the pod (exit {rc}): {detail}; the probe image needs sh "
                             "and curl (diagnose_probe_image)")
        return result
    for step in steps:
        if step["curl"] != 0:
            first = _LEVELS[step["name"]][0]
            result.update(failed_level=first,
                          reason=f"curl exit {step['curl']}: {step['body'][:_EXCERPT] or 'no detail'}")
            return result
        if not 200 <= step["status"] < 300:
            level = _LEVELS[step["name"]][-1]
            result.update(failed_level=level, reason=f"HTTP {step['status']}: {_error_text(step['body'])}")
            return result
        if step["name"] == "generate":
            try:
                answer = json.loads(step["body"])
            except ValueError:
                answer = {}
            if not isinstance(answer, dict) or int(answer.get("eval_count") or 0) < 1:
                result.update(failed_level="generate",
                              reason=f"the server answered without generating a token: {step['body'][:_EXCERPT]}")
                return result
        result["passed"] += list(_LEVELS[step["name"]])
    if result["passed"][-1:] != ["generate"]:
        result.update(failed_level="generate", reason="the probe stopped before generating (its output ended early)")
        return result
    result["healthy"] = True
    return result
