"""The roles name their cluster once, as module_defaults for kubernetes.core's action group
(group/kubernetes.core.k8s, from the aiplatform.ollama.k8s_auth filter), not on every task: the kubeconfig
reaches each kubernetes.core task of a role's included files, on the current ansible-core and on the oldest
the collection claims (meta/runtime.yml, .venv-oldest); an unset one is left out, so K8S_AUTH_KUBECONFIG
still applies. The kubeconfig points at a closed port: the client's error names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import ansible_collections.kubernetes.core as kubernetes_core
from tests.integration.diagnose.test_diagnose_bad_input import KUBECONFIG
from tests.playbook import PROJECT_ROOT
from tests.services.process import free_port

PLAY = """
- name: Deploy on the cluster the kubeconfig names
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Deploy
      ansible.builtin.include_role:
        name: aiplatform.ollama.ollama_flux
"""


def _ansible_playbook(core: str) -> Path:
    if core == "current":
        return Path(sys.executable).with_name("ansible-playbook")
    found = PROJECT_ROOT / ".venv-oldest" / "bin" / "ansible-playbook"
    assert found.exists(), ".venv-oldest is missing: run make setup"
    claim = yaml.safe_load((PROJECT_ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]
    version = subprocess.run([str(found.with_name("python")), "-c",
                              "from ansible.release import __version__; print(__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert claim.replace(" ", "") == f">={version}", (claim, version)
    return found


@pytest.mark.parametrize("core", ["current", "oldest"])
@pytest.mark.parametrize("given", ["ollama_flux_kubeconfig", "K8S_AUTH_KUBECONFIG"])
def test_the_roles_kubeconfig_reaches_its_kubernetes_core_tasks(work_tree_collections, tmp_path, core, given):
    port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(port=port))
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    extra = {"ollama_flux_mode": "apply", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
           # the oldest core's venv has no `ansible` package: kubernetes.core comes from the current one's
           "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(
               [str(work_tree_collections), str(Path(list(kubernetes_core.__path__)[0]).parents[2])])}
    if given == "ollama_flux_kubeconfig":
        extra[given] = str(kubeconfig)
    else:  # the role's own is empty: left out of the module's arguments, the client's lookup applies
        env[given] = str(kubeconfig)
    run = subprocess.run([str(_ansible_playbook(core)), "-i", "localhost,", "-c", "local", str(play),
                          "-e", json.dumps(extra)], env=env, capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "Look for the Flux CRDs" in output, output[-3000:]
    assert f"port={port}" in output, output[-3000:]
