# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the chart's Ollama pod finds its model store, as the chart's values."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.aiplatform.ollama.plugins.module_utils.chart_store import ChartStoreError
from ansible_collections.aiplatform.ollama.plugins.module_utils.chart_store import chart_store as _chart_store

DOCUMENTATION = r"""
name: chart_store
short_description: The otwld ollama chart's values that give its pod the model store
version_added: 1.2.0
author: AI Platform team
description:
  - Not pre-seeded, the chart creates its own claim (O(pvc_mode=chart), kept when the release is deleted) or
    mounts the claim it is given (O(pvc_mode=role) or V(external)), and the pod pulls its models into it.
  - Pre-seeded, the seeded claim's C(models/) directory is mounted read-only through a volume of its own (the
    chart's data volume has no read-only switch and becomes an emptyDir for Ollama's key), and
    C(OLLAMA_NOPRUNE) keeps Ollama from pruning the store at start.
  - C(OLLAMA_MODELS) names the store in every case, so an image with another home directory or user finds it.
positional: _input
options:
  _input:
    description: Whether the store is seeded before the pods start (C(ollama_flux_models_preseeded)).
    type: bool
    required: true
  pvc_mode:
    description: Who creates the claim (C(ollama_flux_pvc_mode)); V(chart) is refused with a pre-seeded store.
    type: str
    choices: [chart, role, external]
    required: true
  pvc_name:
    description: The claim's name (C(ollama_flux_pvc_name)).
    type: str
    required: true
  mount_path:
    description: Where the pod mounts the store's volume (C(ollama_flux_mount_path)); the store is its C(models/).
    type: str
    required: true
  size:
    description: The size of a claim the chart creates (C(ollama_flux_storage_size), or its Flux placeholder).
    type: str
    required: true
  access_modes:
    description: The access modes of a claim the chart creates (C(ollama_flux_pvc_access_modes)).
    type: list
    elements: str
    required: true
  storage_class:
    description: The storage class of a claim the chart creates; empty for the cluster's default.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: The values for a seeded claim made by model_cache
  ansible.builtin.debug:
    msg: >-
      {{ true | aiplatform.ollama.chart_store(pvc_mode='external', pvc_name='ollama-models',
                                              mount_path='/root/.ollama', size='20Gi',
                                              access_modes=['ReadWriteOnce']) }}
"""

RETURN = r"""
_value:
  description: The chart's values for the store.
  type: dict
  contains:
    persistent_volume:
      description: The chart's C(persistentVolume).
      type: dict
    volumes:
      description: Extra pod volumes (C(volumes)); the read-only seeded claim, or none.
      type: list
      elements: dict
    volume_mounts:
      description: Extra container mounts (C(volumeMounts)); the seeded store, or none.
      type: list
      elements: dict
    models_env:
      description: The C(extraEnv) entry naming the store (C(OLLAMA_MODELS)), before the server's settings.
      type: list
      elements: dict
    store_env:
      description: The C(extraEnv) entries after the server's settings (C(OLLAMA_NOPRUNE) when pre-seeded).
      type: list
      elements: dict
"""


def chart_store(preseeded, pvc_mode, pvc_name, mount_path, size, access_modes, storage_class=""):
    try:
        return _chart_store(boolean(preseeded), pvc_mode, pvc_name, mount_path, size, access_modes, storage_class)
    except ChartStoreError as exc:
        raise AnsibleFilterError(f"chart_store: {exc}") from exc


class FilterModule:
    """Chart store filter."""

    def filters(self):
        return {"chart_store": chart_store}
