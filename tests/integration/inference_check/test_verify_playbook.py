"""playbooks/verify.yml against a real Ollama: a healthy model passes, a missing one fails clearly."""

from __future__ import annotations

from tests.playbook import run_playbook


def _vars(ollama, model: str, **extra) -> dict:
    # inventories/local pulls the demo model first; these tests choose for themselves
    return {"inference_check_model": model, "inference_check_ensure_model": False,
            "inference_check_endpoints": [{"name": "direct", "url": ollama.url}], **extra}


def test_verify_pulls_then_probes_and_converges(work_tree_collections, ollama, tiny_model):
    variables = _vars(ollama, tiny_model.ref, inference_check_ensure_model=True, inference_check_insecure=True)
    first = run_playbook(work_tree_collections, "verify.yml", "local", variables)
    assert first.returncode == 0, first.output[-3000:]
    assert "direct: healthy" in first.output
    assert "tok/s" in first.output
    second = run_playbook(work_tree_collections, "verify.yml", "local", variables)
    assert second.returncode == 0, second.output[-3000:]
    assert second.recap["changed"] == 0


def test_verify_names_endpoint_level_and_reason_for_a_missing_model(work_tree_collections, ollama, registry):
    missing = f"{registry.host}/library/never-pushed:latest"
    run = run_playbook(work_tree_collections, "verify.yml", "local", _vars(ollama, missing))
    assert run.returncode != 0
    assert run.recap["failed"] == 1
    assert f"direct ({ollama.url}) failed at level model" in run.output
    assert "never-pushed" in run.output


def test_verify_fails_at_reachable_for_a_closed_port(work_tree_collections, tiny_model):
    from tests.services.process import free_port

    closed = {"inference_check_model": tiny_model.ref, "inference_check_timeout": 3,
              "inference_check_ensure_model": False,
              "inference_check_endpoints": [{"name": "agent-gateway", "url": f"http://127.0.0.1:{free_port()}"}]}
    run = run_playbook(work_tree_collections, "verify.yml", "local", closed)
    assert run.returncode != 0
    assert "failed at level reachable" in run.output
