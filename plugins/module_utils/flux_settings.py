# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ollama_flux role's settings checked together before anything is rendered or applied.

Each finding names the variable, the value found and the fix. Quantities and durations are read by the
same parsers that later compute with them (k8s_quantity, go_duration), so what passes here is what they
accept. A value with a blank or newline around it is refused rather than trimmed: the objects carry the
value as written, and a trailing newline would reach the HelmRelease.
"""

from __future__ import annotations

import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError
from ansible_collections.aiplatform.ollama.plugins.module_utils.go_duration import duration_seconds
from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_quantity import (
    QuantityError,
    cpu_millicores,
    memory_bytes,
)

_SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")
# Ollama reads both as Go durations; OLLAMA_KEEP_ALIVE also takes plain (negative) seconds, -1 = forever
_KEEP_ALIVE = re.compile(r"-?[0-9]+|-?([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+")
_LOAD_TIMEOUT = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+")
_ABSOLUTE_PATH = re.compile(r"/\S*")

REQUIRED = (
    "ollama_flux_environment", "ollama_flux_environments", "ollama_flux_chart_version",
    "ollama_flux_cpu_request", "ollama_flux_cpu_limit", "ollama_flux_memory_request", "ollama_flux_memory_limit",
    "ollama_flux_storage_size", "ollama_flux_service_type", "ollama_flux_allow_non_clusterip",
    "ollama_flux_interval", "ollama_flux_timeout", "ollama_flux_gitops_kustomization_timeout",
    "ollama_flux_num_parallel", "ollama_flux_context_length", "ollama_flux_max_loaded_models",
    "ollama_flux_keep_alive", "ollama_flux_load_timeout", "ollama_flux_mount_path", "ollama_flux_wait_timeout",
    "ollama_flux_install_retries", "ollama_flux_upgrade_retries", "ollama_flux_mode", "ollama_flux_gitops_dir",
    "ollama_flux_model", "ollama_flux_models_preseeded", "ollama_flux_thread_alignment", "ollama_flux_pvc_mode",
)


class FluxSettingsError(InputError):
    """The settings given are not the ones this check reads (a missing variable)."""


def _exact(value) -> str | None:
    """The value as text, or None when blanks or a newline surround it."""
    text = str(value)
    return text if text == text.strip() and text else None


def _fullmatch(pattern: re.Pattern, value) -> bool:
    text = _exact(value)
    return text is not None and pattern.fullmatch(text) is not None


def _parses(parse, value) -> bool:
    if _exact(value) is None:
        return False
    try:
        parse(value)
    except (QuantityError, ValueError):
        return False
    return True


def _int(value) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def flux_may_take_seconds(timeout, install_retries, upgrade_retries) -> int:
    """How long Flux may work on a release before it stalls: (retries + 1) attempts, each up to the timeout.
    A shorter wait gives up on a release still being remediated and reports a timeout instead of the cause."""
    return int(duration_seconds(timeout) * (max(int(install_retries), int(upgrade_retries)) + 1))


def alignment(thread_alignment: str, preseeded: bool) -> str:
    """Who derives the thread-aligned model: the given choice, or for 'auto' the seeder when the store is
    seeded and the chart's postStart otherwise."""
    if thread_alignment != "auto":
        return thread_alignment
    return "seed" if preseeded else "chart_create"


def _quantities(s: dict) -> list[str]:
    found = []
    for name in ("ollama_flux_cpu_request", "ollama_flux_cpu_limit"):
        if not _parses(cpu_millicores, s[name]):
            found.append(f"{name} is '{s[name]}', not a Kubernetes CPU quantity; write millicores or cores, "
                         "e.g. 500m, 2 or 1.5.")
    for name in ("ollama_flux_memory_request", "ollama_flux_memory_limit", "ollama_flux_storage_size"):
        if not _parses(memory_bytes, s[name]):
            found.append(f"{name} is '{s[name]}', not a Kubernetes quantity; write e.g. 512Mi, 4Gi or 4G "
                         "(binary Ki/Mi/Gi/Ti or decimal k/M/G/T, never 'GB').")
    if found:
        return found
    for kind, parse in (("cpu", cpu_millicores), ("memory", memory_bytes)):
        request, limit = s[f"ollama_flux_{kind}_request"], s[f"ollama_flux_{kind}_limit"]
        if parse(limit) < parse(request):
            found.append(f"ollama_flux_{kind}_limit ({limit}) is below ollama_flux_{kind}_request ({request}); "
                         "Kubernetes rejects such a pod: raise the limit or lower the request.")
    return found


def _server(s: dict) -> list[str]:
    found = []
    for name, least in (("ollama_flux_num_parallel", 1), ("ollama_flux_context_length", 256),
                        ("ollama_flux_max_loaded_models", 1)):
        number = _int(s[name])
        if number is None or number < least:
            found.append(f"{name} is '{s[name]}': give a whole number of at least {least}.")
    if not _fullmatch(_KEEP_ALIVE, s["ollama_flux_keep_alive"]):
        found.append(f"ollama_flux_keep_alive is '{s['ollama_flux_keep_alive']}', not a Go duration or seconds; "
                     "write e.g. 24h, 30m or 300, or -1 to keep the model loaded forever.")
    if not _fullmatch(_LOAD_TIMEOUT, s["ollama_flux_load_timeout"]):
        found.append(f"ollama_flux_load_timeout is '{s['ollama_flux_load_timeout']}', not a Go duration; "
                     "write e.g. 15m or 1h.")
    if not _fullmatch(_ABSOLUTE_PATH, s["ollama_flux_mount_path"]):
        found.append(f"ollama_flux_mount_path is '{s['ollama_flux_mount_path']}': give the absolute path, without "
                     "blanks, at which the Ollama pod mounts the model cache (the chart's ollama.mountPath), "
                     "e.g. /root/.ollama.")
    return found


def _flux(s: dict) -> list[str]:
    found = []
    durations_ok = True
    for name in ("ollama_flux_interval", "ollama_flux_timeout", "ollama_flux_gitops_kustomization_timeout"):
        if not _parses(duration_seconds, s[name]):
            durations_ok = False
            found.append(f"{name} is '{s[name]}', not a Flux duration; write e.g. 10m, 30m or 1h30m.")
    retries = [_int(s["ollama_flux_install_retries"]), _int(s["ollama_flux_upgrade_retries"])]
    wait = _int(s["ollama_flux_wait_timeout"])
    if durations_ok and None not in retries and wait is not None and wait != 0:
        may_take = flux_may_take_seconds(s["ollama_flux_timeout"], *retries)
        if wait < may_take:
            found.append(
                f"ollama_flux_wait_timeout is {wait}s, but Flux may take {may_take}s (ollama_flux_timeout "
                f"{s['ollama_flux_timeout']} x {max(retries) + 1} attempts) before it gives up; set "
                f"ollama_flux_wait_timeout to 0 (derived) or at least {may_take}, or lower ollama_flux_timeout.")
    if s["ollama_flux_mode"] == "gitops" and not str(s["ollama_flux_gitops_dir"] or ""):
        found.append("ollama_flux_mode is gitops but ollama_flux_gitops_dir is empty; set it to the root of the "
                     "Flux repository checkout the files belong in.")
    return found


def _who_derives(s: dict) -> list[str]:
    found = []
    preseeded = boolean(s["ollama_flux_models_preseeded"])
    derives = alignment(s["ollama_flux_thread_alignment"], preseeded)
    # the chart's postStart writes the Modelfile to <mount>/<the model's name>: no directory exists for a '/'
    if derives == "chart_create" and "/" in str(s["ollama_flux_model"]):
        found.append(
            f"ollama_flux_model is '{s['ollama_flux_model']}', and with ollama_flux_models_preseeded false the "
            "chart would derive the thread-aligned model in its postStart hook, which writes the Modelfile to a "
            "file named after the model and fails for a name with '/'. Seed the model first "
            "(ollama_flux_models_preseeded: true, the default: an init container derives it) or set "
            "ollama_flux_thread_alignment: off.")
    if derives == "seed" and not preseeded:
        found.append(
            "ollama_flux_thread_alignment is seed, but ollama_flux_models_preseeded is false: the seeder derives "
            "the thread-aligned model, and nothing is seeded. Seed the store (ollama_flux_models_preseeded: true, "
            "the default), or let the chart derive it after its pull (ollama_flux_thread_alignment: auto or "
            "chart_create).")
    # the chart's own volume has no read-only switch: a pre-seeded store is mounted through our own volume
    if s["ollama_flux_pvc_mode"] == "chart" and preseeded:
        found.append(
            "ollama_flux_pvc_mode is chart, but ollama_flux_models_preseeded is true: a claim the chart creates "
            "cannot be seeded before the chart starts its pod, nor mounted read-only. Let model_cache create and "
            "seed it (ollama_flux_pvc_mode: external) or this role (role), or set ollama_flux_models_preseeded: "
            "false.")
    return found


def settings_findings(settings: dict) -> list[str]:
    """Every problem of the settings, each a sentence naming the variable, the value and the fix."""
    missing = [name for name in REQUIRED if name not in settings]
    if missing:
        raise FluxSettingsError(f"the settings lack {', '.join(missing)}")
    s = settings
    found = []
    if s["ollama_flux_environment"] not in s["ollama_flux_environments"]:
        found.append(
            f"ollama_flux_environment is '{s['ollama_flux_environment']}', which is not one of "
            f"ollama_flux_environments ({', '.join(s['ollama_flux_environments'])}); fix the name or add the "
            "environment to ollama_flux_environments.")
    if not _fullmatch(_SEMVER, s["ollama_flux_chart_version"]):
        found.append(
            f"ollama_flux_chart_version is '{s['ollama_flux_chart_version']}', not a semantic version such as "
            "1.53.0; the release is pinned to one exact chart version (no ranges, no 'v' prefix).")
    if s["ollama_flux_service_type"] != "ClusterIP" and not boolean(s["ollama_flux_allow_non_clusterip"]):
        found.append(
            f"ollama_flux_service_type is '{s['ollama_flux_service_type']}': Ollama has no authentication and is "
            "reached through the Agent Gateway only. Keep ClusterIP, or set ollama_flux_allow_non_clusterip: "
            "true if exposing it is really intended.")
    return found + _quantities(s) + _server(s) + _flux(s) + _who_derives(s)
