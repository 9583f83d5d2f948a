"""The modules as users run them: ansible-playbook and ansible ad hoc with this tree's collection,
a real Ollama and the real registry. The action plugin's progress lines must reach the normal output."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

PLAYBOOK = """\
- name: Pull with progress, then converge
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Pull the model
      aiplatform.ollama.ollama_model:
        name: "{{ model_ref }}"
        host: "{{ ollama_url }}"
        insecure: true
        progress_interval: 0.5
      register: first

    - name: Pull again
      aiplatform.ollama.ollama_model:
        name: "{{ model_ref }}"
        host: "{{ ollama_url }}"
        insecure: true
      register: second

    - name: Probe it
      aiplatform.ollama.ollama_health:
        name: "{{ model_ref }}"
        host: "{{ ollama_url }}"
        level: generate
      register: probe

    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'first': first, 'second': second, 'probe': probe} | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
"""


def run(cmd, env, timeout=600):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def bigger_model(registry, model_factory):
    # large enough that the pull lasts several progress intervals
    return registry.push_model(model_factory.large(64, seed=3), name="itest/playbook", tag="v1")


def test_playbook_pull_prints_progress_and_converges(ansible_env, ollama, bigger_model, tmp_path):
    playbook = tmp_path / "pull.yml"
    playbook.write_text(PLAYBOOK)
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
           "-e", f"ansible_python_interpreter={sys.executable}",
           "-e", f"model_ref={bigger_model.ref}", "-e", f"ollama_url={ollama.url}",
           "-e", f"result_file={tmp_path / 'result.json'}"]
    proc = run(cmd, ansible_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if f"pulling {bigger_model.ref}:" in line]
    assert lines, proc.stdout
    assert any(re.search(r"\d+\.\d% .*iB / .*iB at .*/s, ETA", line) for line in lines), lines
    data = json.loads((tmp_path / "result.json").read_text())
    weights = bigger_model.manifest["layers"][0]["size"]
    # the weights moved; small layers other models share (the template) may already have been there
    assert data["first"]["changed"] is True and weights <= data["first"]["bytes_transferred"] <= bigger_model.size
    assert "ansible_job_id" not in data["first"] and "results_file" not in data["first"]
    assert data["second"]["changed"] is False
    assert data["probe"]["eval_tokens"] >= 1
    assert re.search(r"localhost\s*:\s*ok=4\s+changed=2\s", proc.stdout), proc.stdout


def test_adhoc_check_mode_and_diff(ansible_env, ollama, registry, model_factory):
    model = registry.push_model(model_factory.tiny(seed=71), name="itest/adhoc", tag="v1")
    base = ["ansible", "localhost", "-i", "localhost,", "-c", "local", "-e",
            f"ansible_python_interpreter={sys.executable}", "-m", "aiplatform.ollama.ollama_model",
            "-a", json.dumps({"name": model.ref, "host": ollama.url, "insecure": True})]
    check = run(base + ["--check", "--diff"], ansible_env)
    assert check.returncode == 0 and "CHANGED" in check.stdout, check.stdout + check.stderr
    assert '"digest"' in check.stdout or "digest" in check.stdout
    real = run(base, ansible_env)
    assert real.returncode == 0 and "CHANGED" in real.stdout, real.stdout + real.stderr
    again = run(base, ansible_env)
    assert again.returncode == 0 and "SUCCESS" in again.stdout and '"changed": false' in again.stdout, again.stdout


def test_adhoc_bad_name_fails_with_clear_error(ansible_env, ollama):
    proc = run(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-e",
                f"ansible_python_interpreter={sys.executable}", "-m", "aiplatform.ollama.ollama_model",
                "-a", json.dumps({"name": "../etc", "host": ollama.url})], ansible_env)
    assert proc.returncode != 0
    assert "invalid namespace '..'" in proc.stdout, proc.stdout
