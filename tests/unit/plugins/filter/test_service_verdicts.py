"""The service mode of diagnose: verdicts from the unit, its journal, the kernel's log, the store and a probe."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.filter.service_verdicts import service_verdicts

ACTIVE = {"LoadState": "loaded", "ActiveState": "active", "SubState": "running", "Result": "success"}
HEALTHY = {"healthy": True, "passed": ["reachable", "version", "model", "generate"]}
NAMES = {"unit": "ollama.service", "model": "tiny:latest-t1"}


def by_runbook(gathered):
    return {v["runbook"]: v for v in service_verdicts(gathered)}


def test_a_healthy_service_is_ok_on_every_runbook():
    verdicts = by_runbook({"unit": ACTIVE, "journal": [], "kernel": [], "store": {"blobs_missing": []},
                           "probe": HEALTHY, "names": NAMES})
    assert [v["status"] for v in verdicts.values()] == ["ok", "ok", "ok"]
    assert set(verdicts) == {"unit_failed", "oom_killed", "model_missing"}
    assert all({"title", "cause", "evidence", "fix"} <= set(v) for v in verdicts.values())


def test_a_failed_unit_names_the_error_from_its_journal():
    unit = {**ACTIVE, "ActiveState": "failed", "SubState": "failed", "Result": "exit-code", "ExecMainStatus": "1"}
    journal = ["time=... msg=\"server config\"",
               "Error: listen tcp 127.0.0.1:11434: bind: address already in use"]
    verdict = by_runbook({"unit": unit, "journal": journal, "probe": {"healthy": False, "failed_level": "reachable",
                                                                      "reason": "connection refused"},
                          "names": NAMES})["unit_failed"]
    assert verdict["status"] == "failing"
    assert "address already in use" in verdict["cause"]
    assert "ollama_service_host" in verdict["fix"]
    assert "unit: ActiveState=failed" in verdict["evidence"][0]


def test_a_missing_unit_says_how_to_install_it():
    verdict = by_runbook({"unit": {"LoadState": "not-found"}, "names": NAMES})["unit_failed"]
    assert verdict["status"] == "failing" and "playbooks/service.yml" in verdict["fix"]


def test_an_oom_kill_is_found_in_the_unit_result_or_the_kernel_log():
    unit = {**ACTIVE, "ActiveState": "failed", "Result": "oom-kill"}
    assert by_runbook({"unit": unit, "names": NAMES})["oom_killed"]["status"] == "failing"
    kernel = ["kernel: Memory cgroup out of memory: Killed process 4242 (ollama) total-vm:2000kB"]
    verdict = by_runbook({"unit": ACTIVE, "kernel": kernel, "names": {**NAMES, "memory_need": "1.2 GiB"}})["oom_killed"]
    assert verdict["status"] == "failing" and verdict["evidence"] == kernel
    assert "ollama_service_memory_max above the model's need (1.2 GiB)" in verdict["fix"]
    other = ["kernel: Out of memory: Killed process 17 (postgres)"]
    assert by_runbook({"unit": ACTIVE, "kernel": other, "names": NAMES})["oom_killed"]["status"] == "ok"


def test_a_killed_runner_is_read_from_the_probe():
    probe = {"healthy": False, "failed_level": "generate",
             "reason": "llama runner process has terminated: signal: killed"}
    assert by_runbook({"unit": ACTIVE, "probe": probe, "names": NAMES})["oom_killed"]["status"] == "failing"


def test_a_damaged_store_or_a_missing_model_fails_model_missing():
    store = {"blobs_missing": ["sha256:" + "a" * 64], "blobs_corrupt": []}
    verdict = by_runbook({"unit": ACTIVE, "store": store, "probe": HEALTHY, "names": NAMES})["model_missing"]
    assert verdict["status"] == "failing" and "1 blob(s) missing" in verdict["cause"]
    probe = {"healthy": False, "failed_level": "model", "passed": ["reachable", "version"],
             "reason": "model 'tiny:latest-t1' not found"}
    verdict = by_runbook({"unit": ACTIVE, "probe": probe, "names": NAMES})["model_missing"]
    assert verdict["status"] == "failing" and "ollama_service_models" in verdict["fix"]
