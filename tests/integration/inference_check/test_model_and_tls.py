"""inference_check's inputs before any probe, and its endpoints behind TLS: run alone it names the model
variable it needs instead of probing a default model, refuses a hostile model name naming the variable,
and reaches a gateway signed by a private CA through inference_check_ca_path with verification on."""

from __future__ import annotations

import pytest

from tests.playbook import run_playbook

# a controller and nothing else: no inventory variable names a model
BARE_INVENTORY = """\
all:
  children:
    k8s_controller:
      hosts:
        localhost:
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""

HOSTILE = {
    "command-substitution": "$(id)",
    "semicolon": "a;b",
    "backticks": "`id`",
    "newline": "qwen2.5\nid",
    "leading-newline": "\nreboot",
    "path-traversal": "../x",
}


def test_verify_alone_without_a_model_names_the_variable_and_probes_nothing(work_tree_collections, tmp_path,
                                                                          ollama):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(BARE_INVENTORY)
    run = run_playbook(work_tree_collections, "verify.yml", str(inventory),
                       {"inference_check_endpoints": [{"name": "direct", "url": ollama.url}]})
    assert run.returncode != 0 and run.recap["failed"] == 1, run.output[-3000:]
    assert "inference_check_model is empty" in run.said, run.output[-3000:]
    assert "Fix: set inference_check_model (e.g. qwen2.5:72b), or ollama_flux_model in the inventory" in run.said
    assert "Probe each endpoint" not in run.output and "qwen2.5:72b-t" not in run.output


def test_the_inventorys_model_is_derived_when_the_role_runs_alone(work_tree_collections, tmp_path, ollama):
    """ollama_flux_model alone still names the model, thread-aligned as the deployment serves it."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(BARE_INVENTORY)
    run = run_playbook(work_tree_collections, "verify.yml", str(inventory),
                       {"ollama_flux_model": "never-pushed:1b", "ollama_flux_cpu_limit": "2",
                        "inference_check_diagnose": False, "inference_check_level": "model",
                        "inference_check_endpoints": [{"name": "direct", "url": ollama.url}]})
    assert run.returncode != 0, run.output[-3000:]
    assert "Inference check failed for model never-pushed:1b-t2" in run.said, run.output[-3000:]


@pytest.mark.parametrize("name", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_model_name_is_refused_naming_the_variable_before_any_probe(work_tree_collections, ollama, name):
    run = run_playbook(work_tree_collections, "verify.yml", "local",
                       {"inference_check_model": name, "inference_check_ensure_model": True,
                        "inference_check_endpoints": [{"name": "direct", "url": ollama.url}]})
    assert run.returncode != 0 and run.recap["failed"] == 1, run.output[-3000:]
    assert "inference_check_model: model name" in run.said, run.output[-3000:]
    assert "Ensure the model is present" not in run.output and "Probe each endpoint" not in run.output


def _tls_vars(tls_gateway, tiny_model, **extra) -> dict:
    return {"inference_check_model": tiny_model.ref, "inference_check_insecure": True, "inference_check_timeout": 10,
            "inference_check_endpoints": [{"name": "agent-gateway", "url": tls_gateway["url"]}], **extra}


def test_a_private_ca_gateway_is_refused_without_its_ca_and_named(work_tree_collections, tls_gateway, tiny_model):
    run = run_playbook(work_tree_collections, "verify.yml", "local",
                       _tls_vars(tls_gateway, tiny_model, inference_check_ensure_model=False))
    assert run.returncode != 0 and run.recap["failed"] == 1, run.output[-3000:]
    assert f"agent-gateway ({tls_gateway['url']}) failed at level reachable" in run.said, run.output[-3000:]
    assert "certificate is not trusted" in run.said
    assert "set inference_check_ca_path to the PEM file of the CA" in run.said


def test_a_private_ca_gateway_is_verified_through_inference_check_ca_path(work_tree_collections, tls_gateway,
                                                                           tiny_model):
    # the pull, the probe and the parallel requests all go through the gateway, verified against the CA
    run = run_playbook(work_tree_collections, "verify.yml", "local",
                       _tls_vars(tls_gateway, tiny_model, inference_check_ensure_model=True,
                                 inference_check_ca_path=tls_gateway["ca"]))
    assert run.returncode == 0, run.output[-3000:]
    assert "agent-gateway: healthy" in run.said
    assert f"concurrency through agent-gateway ({tls_gateway['url']}): 1 parallel request, 0 failed" in run.said
