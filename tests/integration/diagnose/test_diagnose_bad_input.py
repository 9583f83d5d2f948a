"""diagnose.yml refuses what it cannot work with before it reads anything, naming the input and the fix.

The cases that need a cluster (a missing namespace, an unknown runbook) run on the test cluster in
tests/integration/cluster/test_remediation.py; these need none."""

from __future__ import annotations

from tests.playbook import run_playbook
from tests.services.process import free_port

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
users:
- name: nobody
  user: {{token: not-a-token}}
contexts:
- name: gone
  context: {{cluster: gone, user: nobody}}
current-context: gone
"""


def test_an_unreachable_cluster_is_named_with_the_kubeconfig(work_tree_collections, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(port=free_port()))
    run = run_playbook(work_tree_collections, "diagnose.yml", "prod", {"diagnose_kubeconfig": str(kubeconfig)})
    said = run.said
    assert run.returncode != 0 and run.recap["failed"] == 1
    assert f"the cluster cannot be read with kubeconfig {kubeconfig}" in said, run.output[-3000:]
    assert "Fix: point diagnose_kubeconfig / diagnose_kube_context" in said


def test_a_hostile_model_name_is_refused_before_the_cluster_is_read(work_tree_collections):
    run = run_playbook(work_tree_collections, "diagnose.yml", "prod", {"diagnose_model": "$(reboot)"})
    assert run.returncode != 0
    assert "diagnose_model: model name '$(reboot)'" in run.said, run.output[-3000:]
    assert "Read the namespace" not in run.output


def test_without_a_model_it_names_the_variable_before_reading_the_cluster(work_tree_collections, tmp_path):
    # a controller and nothing else: no inventory variable names a model, so none is guessed
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    k8s_controller:\n      hosts:\n        localhost:\n"
                         "  vars:\n    ansible_connection: local\n"
                         "    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n")
    run = run_playbook(work_tree_collections, "diagnose.yml", str(inventory))
    assert run.returncode != 0, run.output[-3000:]
    assert "diagnose_model is empty" in run.said and "Fix: set diagnose_model" in run.said, run.output[-3000:]
    assert "Read the namespace of the release" not in run.output
