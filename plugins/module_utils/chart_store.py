# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where the chart's Ollama pod finds its model store, as the chart's values.

Three ways, by ollama_flux_pvc_mode and ollama_flux_models_preseeded:
- not pre-seeded, `chart`: the chart creates its own claim (persistentVolume) and the pod pulls into it;
  the claim is kept when the release is deleted, so an uninstall does not drop the downloaded models.
- not pre-seeded, `role` or `external`: the chart mounts the claim it is given (existingClaim).
- pre-seeded: the seeded claim's models/ directory is mounted read-only, in the volume and in the mount,
  through a volume of our own, because the chart's data volume has no read-only switch. The chart's data
  volume is then an emptyDir at the mount path, where Ollama writes its key. Ollama must not prune the
  store at start (it would try to delete what no manifest names, such as a seeder's partial download), and
  cannot: OLLAMA_NOPRUNE says so rather than letting it fail.
The store is named explicitly (OLLAMA_MODELS) in every way: an image whose HOME is not /root, or a non-root
user, would look elsewhere.
"""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError

PVC_MODES = ("chart", "role", "external")
STORE_VOLUME = "ollama-store"


class ChartStoreError(InputError):
    """A combination the chart cannot serve; flux_settings refuses it earlier with the variables' names."""


def chart_store(preseeded, pvc_mode, pvc_name, mount_path, size, access_modes, storage_class=""):
    """{persistent_volume, volumes, volume_mounts, models_env, store_env}: the chart's values for the store.

    The two env lists stand before and after the server's settings in extraEnv, the order releases already
    carry (another order is another value, and every release would be upgraded for it)."""
    if pvc_mode not in PVC_MODES:
        raise ChartStoreError(f"pvc_mode is {pvc_mode!r}; give one of {', '.join(PVC_MODES)}")
    models_dir = f"{mount_path}/models"
    models_env = [{"name": "OLLAMA_MODELS", "value": models_dir}]
    if preseeded:
        if pvc_mode == "chart":
            raise ChartStoreError("a claim the chart creates cannot be seeded before the chart starts its pod: with a "
                                  "pre-seeded store, pvc_mode must be role or external")
        return {
            "persistent_volume": {"enabled": False},
            "volumes": [{"name": STORE_VOLUME,
                         "persistentVolumeClaim": {"claimName": pvc_name, "readOnly": True}}],
            "volume_mounts": [{"name": STORE_VOLUME, "mountPath": models_dir, "subPath": "models",
                               "readOnly": True}],
            "models_env": models_env,
            "store_env": [{"name": "OLLAMA_NOPRUNE", "value": "1"}],
        }
    if pvc_mode == "chart":
        volume = {"enabled": True, "size": size, "accessModes": list(access_modes), "storageClass": storage_class,
                  "annotations": {"helm.sh/resource-policy": "keep"}}
    else:
        volume = {"enabled": True, "existingClaim": pvc_name}
    return {"persistent_volume": volume, "volumes": [], "volume_mounts": [], "models_env": models_env,
            "store_env": []}
