"""apply mode sends the same objects with the values filled in: check them without a cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[3] / "roles" / "ollama_flux"

PLAYBOOK = """
- name: Compute the apply-mode objects without a cluster
  hosts: k8s_controller
  gather_facts: false
  tasks:
    - name: Validate and compute, as the role does first
      ansible.builtin.include_role:
        name: aiplatform.ollama.ollama_flux
        tasks_from: validate.yml
        public: true
    - name: Load the object definitions
      ansible.builtin.include_vars:
        file: {objects}
    - name: Write them out
      ansible.builtin.copy:
        content: >-
          {{{{ {{'cluster_vars': __ollama_flux_cluster_vars_obj,
                'app': __ollama_flux_app_objects}} | to_json }}}}
        dest: {dest}
        mode: "0644"
"""


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_apply_objects_validate(environment, tmp_path, collections_path, seed_table, validate_k8s, validate_flux):
    dest = tmp_path / "objects.json"
    playbook = tmp_path / "objects.yml"
    playbook.write_text(PLAYBOOK.format(objects=ROLE / "vars" / "objects.yml", dest=dest))
    inventory = ROLE.parents[1] / "inventories" / environment
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), str(playbook)],
        env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path), "ANSIBLE_NOCOLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    data = json.loads(dest.read_text())

    cluster_vars = data["cluster_vars"]
    validate_k8s(cluster_vars)
    assert cluster_vars["metadata"] == {
        "name": "cluster-vars",
        "namespace": "flux-system",
        "labels": {
            "app.kubernetes.io/part-of": "aiplatform-ollama",
            "app.kubernetes.io/managed-by": "aiplatform.ollama",
        },
    }
    table = seed_table[environment]
    assert {k: cluster_vars["data"][k] for k in table} == table

    for item in data["app"]:
        obj = item["object"]
        assert "${" not in json.dumps(obj), f"{item['file']} still has a placeholder in apply mode"
        (validate_flux if "fluxcd.io" in obj["apiVersion"] else validate_k8s)(obj)
    release = next(i["object"] for i in data["app"] if i["object"]["kind"] == "HelmRelease")
    assert release["spec"]["values"]["resources"]["limits"] == {
        "cpu": table["OLLAMA_CPU_LIMIT"],
        "memory": table["OLLAMA_MEMORY_LIMIT"],
    }
    assert release["spec"]["install"]["remediation"]["retries"] == 3
