# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The runbooks of Ollama run as a systemd service (roles/ollama_service), as verdicts.

The same verdict format as the cluster's runbooks (runbooks.py): ok, failing or unknown, the cause in
one sentence, the evidence and the fix. The evidence is what the diagnosis read on the host: the unit's
properties (`systemctl show`), its journal, the kernel's log of OOM kills, the store's check
(ollama_store_model state=verified in check mode) and an inference probe (ollama_health).
"""

from __future__ import annotations

import re

from .runbooks import _RUNNER_KILLED  # the one reading of Ollama's answer when its runner was killed

RUNBOOKS = (
    ("unit_failed", "the Ollama unit is not running"),
    ("oom_killed", "the kernel killed Ollama for memory"),
    ("model_missing", "the served model is missing from the store or damaged"),
)
# what the kernel logs for a kill inside the unit's cgroup: the task line names the process
_KERNEL_OOM = re.compile(r"(Out of memory|Memory cgroup out of memory|oom-kill).*?(ollama)", re.IGNORECASE)


def _verdict(key, status, cause, evidence=(), fix=""):
    return {"runbook": key, "title": dict(RUNBOOKS)[key], "status": status, "cause": cause,
            "evidence": [e for e in evidence if e], "fix": fix}


def _unit_line(unit):
    keys = ("ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts", "MemoryMax", "CPUQuotaPerSecUSec")
    return "unit: " + ", ".join(f"{k}={unit[k]}" for k in keys if unit.get(k) not in (None, ""))


def _unit(unit, journal, names):
    name = names.get("unit", "ollama.service")
    if not unit or unit.get("LoadState") == "not-found":
        return _verdict("unit_failed", "failing", f"{name} is not installed on this host", [],
                        "run playbooks/service.yml (roles/ollama_service) on it")
    if unit.get("ActiveState") == "active":
        return _verdict("unit_failed", "ok", f"{name} is active ({unit.get('SubState', '')})", [_unit_line(unit)])
    tail = [line for line in journal if line.strip()][-5:]
    hint = next((line for line in reversed(tail) if "Error:" in line or "error" in line.lower()), "")
    cause = f"{name} is {unit.get('ActiveState', 'unknown')} (result {unit.get('Result', 'unknown')})"
    if hint:
        cause += f": {hint.split('Error:', 1)[-1].strip() if 'Error:' in hint else hint.strip()}"
    return _verdict("unit_failed", "failing", cause, [_unit_line(unit), *tail],
                    f"read journalctl -u {name}; fix what it names (a port already bound: ollama_service_host; a "
                    "store it cannot read: ollama_service_store_path), then run playbooks/service.yml again")


def _oom(unit, kernel, probe, names):
    fix = (f"raise ollama_service_memory_max above the model's need ({names['memory_need']}), or leave it auto"
           if names.get("memory_need") else "raise ollama_service_memory_max, or leave it auto (the sizing)")
    kills = [line for line in kernel if _KERNEL_OOM.search(line)]
    if unit and unit.get("Result") == "oom-kill":
        return _verdict("oom_killed", "failing", f"systemd stopped {names.get('unit', 'the unit')} after an OOM kill",
                        [_unit_line(unit), *kills[-3:]], fix)
    if kills:
        return _verdict("oom_killed", "failing", "the kernel killed an Ollama process for memory "
                        "(MemoryMax or the host)", kills[-3:], fix)
    if probe and not probe.get("healthy") and _RUNNER_KILLED.search(str(probe.get("reason", ""))):
        return _verdict("oom_killed", "failing", f"Ollama's model runner was killed while it loaded or ran "
                        f"{names.get('model', 'the model')}", [f"probe: {probe.get('reason', '')}"], fix)
    return _verdict("oom_killed", "ok", "no OOM kill of Ollama in the unit's state or the kernel's log")


def _model(store, probe, names):
    model = names.get("model", "the model")
    missing = list((store or {}).get("blobs_missing") or [])
    corrupt = list((store or {}).get("blobs_corrupt") or [])
    if missing or corrupt:
        return _verdict("model_missing", "failing", f"the store holds {model} incompletely: {len(missing)} blob(s) "
                        f"missing, {len(corrupt)} corrupt", [f"missing: {d}" for d in missing[:3]]
                        + [f"corrupt: {d}" for d in corrupt[:3]],
                        "run playbooks/service.yml again (it seeds the missing blobs), or ollama_store_model with "
                        "state=verified and repair=true on ollama_service_store_path")
    if probe is None:
        return _verdict("model_missing", "unknown", "no inference probe ran", fix="set diagnose_service_url")
    if "model" in (probe.get("passed") or []):
        return _verdict("model_missing", "ok", f"{model} is served", [f"probe passed {', '.join(probe['passed'])}"])
    if probe.get("failed_level") == "model":
        return _verdict("model_missing", "failing", f"{model} is not in the served store: {probe.get('reason', '')}",
                        [], "add it to ollama_service_models and run playbooks/service.yml (it writes the served "
                        "model <model>-t<N> beside the base one)")
    return _verdict("model_missing", "unknown", f"Ollama did not answer: {probe.get('reason', '')}",
                    [], "see the other verdicts")


def service_verdicts(unit=None, journal=None, kernel=None, store=None, probe=None, names=None):
    """One verdict per service runbook. unit: `systemctl show` properties; journal, kernel: log lines;
    store: an ollama_store_model state=verified result; probe: an ollama_health result; names: unit,
    model and, where known, memory_need (a sentence)."""
    names = names or {}
    journal = [str(line) for line in journal or []]
    kernel = [str(line) for line in kernel or []]
    return [_unit(unit or {}, journal, names), _oom(unit or {}, kernel, probe, names), _model(store, probe, names)]
