"""The diagnose role's failed_wait entry point, which the apply modes' rescues run: when even the cluster
cannot be read it says so, does not fail the run itself, and still leaves diagnose_explained naming the
workload whose wait failed, never an earlier diagnosis's evidence. What it reads on a real cluster is
tested in tests/integration/cluster/test_remediation.py."""

from __future__ import annotations

from tests.integration.diagnose.test_diagnose_bad_input import KUBECONFIG
from tests.playbook import run_playbook
from tests.services.process import free_port

PLAY = """
- name: Diagnose the seed Job's failed wait
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Leave an earlier diagnosis's evidence behind
      ansible.builtin.set_fact:
        diagnose_evidence:
          claim: {{metadata: {{name: ollama-models, namespace: ollama}}, status: {{phase: Pending}}}}
    - name: Diagnose the failed wait
      ansible.builtin.include_role:
        name: aiplatform.ollama.diagnose
        tasks_from: failed_wait
      vars:
        diagnose_job: seed-1
        diagnose_job_container: seed
        diagnose_kubeconfig: {kubeconfig}
    - name: Say the cause
      ansible.builtin.debug:
        msg: "explained {{{{ diagnose_explained.cause }}}}: {{{{ diagnose_explained.report | first }}}}"
"""


def test_a_diagnosis_that_cannot_read_the_cluster_still_names_the_job(work_tree_collections, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(port=free_port()))
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(kubeconfig=kubeconfig))

    run = run_playbook(work_tree_collections, str(play), "prod")

    said = run.said
    assert run.returncode == 0, run.output[-3000:]
    assert f"the runbook diagnosis could not run: the cluster cannot be read with kubeconfig {kubeconfig}" in said
    assert "explained not_ready: == Job (active 0, succeeded 0, failed 0) ==" in said, run.output[-3000:]
