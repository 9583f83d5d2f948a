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
