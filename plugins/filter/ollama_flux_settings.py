# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ollama_flux role's settings checked, and the values the role derives from them."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.aiplatform.ollama.plugins.module_utils.flux_settings import (
    FluxSettingsError,
    alignment,
    flux_may_take_seconds,
    settings_findings,
)

DOCUMENTATION = r"""
name: ollama_flux_settings
short_description: Check the ollama_flux role's settings together, and derive what the role computes from them
version_added: 1.2.0
author: AI Platform team
description:
  - Reads the C(ollama_flux_*) variables the role validates before it renders or applies anything, and returns
    every problem found, each a sentence naming the variable, the value and the fix.
  - Quantities and durations are read by the parsers the role later computes with
    (P(aiplatform.ollama.k8s_cpu_millicores#filter), P(aiplatform.ollama.k8s_quantity_bytes#filter),
    P(aiplatform.ollama.go_duration_seconds#filter)); a value with a blank or newline around it is refused.
  - Also returns who derives the thread-aligned model and how long Flux may take on the release, which the
    role's wait uses.
positional: _input
options:
  _input:
    description:
      - The role's variables by name, at least C(ollama_flux_environment), C(ollama_flux_environments),
        C(ollama_flux_chart_version), the CPU and memory requests and limits, C(ollama_flux_storage_size),
        C(ollama_flux_service_type), C(ollama_flux_allow_non_clusterip), the Flux interval and timeouts, the
        server settings, C(ollama_flux_mount_path), C(ollama_flux_wait_timeout), the retries, the mode and
        GitOps directory, C(ollama_flux_model), C(ollama_flux_models_preseeded),
        C(ollama_flux_thread_alignment) and C(ollama_flux_pvc_mode).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Fail on every problem of the settings at once
  ansible.builtin.assert:
    that: __settings.findings | length == 0
    fail_msg: "{{ __settings.findings | join(' ') }}"
  vars:
    __settings: >-
      {{ dict(__names | zip(query('ansible.builtin.vars', *__names))) | aiplatform.ollama.ollama_flux_settings }}
    __names: [ollama_flux_environment, ollama_flux_environments, ollama_flux_chart_version, ollama_flux_cpu_request,
              ollama_flux_cpu_limit, ollama_flux_memory_request, ollama_flux_memory_limit, ollama_flux_storage_size,
              ollama_flux_service_type, ollama_flux_allow_non_clusterip, ollama_flux_interval, ollama_flux_timeout,
              ollama_flux_gitops_kustomization_timeout, ollama_flux_num_parallel, ollama_flux_context_length,
              ollama_flux_max_loaded_models, ollama_flux_keep_alive, ollama_flux_load_timeout, ollama_flux_mount_path,
              ollama_flux_wait_timeout, ollama_flux_install_retries, ollama_flux_upgrade_retries, ollama_flux_mode,
              ollama_flux_gitops_dir, ollama_flux_model, ollama_flux_models_preseeded, ollama_flux_thread_alignment,
              ollama_flux_pvc_mode]
"""

RETURN = r"""
_value:
  description:
    - C(findings), the problems found (empty when none).
    - C(alignment), who derives the thread-aligned model (V(seed), V(chart_create) or V(off)).
    - C(flux_may_take_s), the seconds Flux may work on the release before it stalls (the timeout times the
      attempts), V(none) while a finding makes it unknown.
  type: dict
"""


def ollama_flux_settings(settings):
    try:
        findings = settings_findings(settings)
    except FluxSettingsError as exc:
        raise AnsibleFilterError(f"ollama_flux_settings: {exc}") from None
    try:
        may_take = flux_may_take_seconds(settings["ollama_flux_timeout"], settings["ollama_flux_install_retries"],
                                         settings["ollama_flux_upgrade_retries"])
    except ValueError:
        may_take = None
    return {"findings": findings, "flux_may_take_s": may_take,
            "alignment": alignment(settings["ollama_flux_thread_alignment"],
                                   boolean(settings["ollama_flux_models_preseeded"]))}


class FilterModule:
    """ollama_flux settings filter."""

    def filters(self):
        return {"ollama_flux_settings": ollama_flux_settings}
