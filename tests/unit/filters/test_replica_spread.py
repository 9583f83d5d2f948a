"""replica_spread: the filter the inference_check role judges the replicas with, on Ollama's own log lines.

The counting itself is tested in tests/unit/inference_check/test_replica_spread_unit.py; here what the
role relies on: the shapes it passes, the names in its errors, and the documentation ansible-doc shows.
"""

from __future__ import annotations

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter import replica_spread as plugin
from ansible_collections.aiplatform.ollama.plugins.filter.replica_spread import FilterModule, replica_spread

START = ('time=2026-12-04T20:30:58.114Z level=INFO source=routes.go:1790 '
         'msg="Listening on [::]:11434 (version 0.18.3)"\n')
READY_PROBE = '[GIN] 2026/12/04 - 20:31:00 | 200 |      49.634µs |      10.244.0.1 | GET      "/"\n'
CHAT = '[GIN] 2026/12/04 - 20:31:09 | 200 |  5.848485187s |      10.244.0.7 | POST     "/api/chat"\n'
CHAT_500 = '[GIN] 2026/12/04 - 20:31:13 | 500 |  280.694618ms |      10.244.0.7 | POST     "/api/chat"\n'


def logs(**by_pod):
    return [{"name": name.replace("_", "-"), "log": log} for name, log in by_pod.items()]


def test_registered_as_a_filter():
    assert FilterModule().filters()["replica_spread"] is replica_spread


def test_the_role_plans_then_judges():
    before = logs(ollama_a=START + READY_PROBE, ollama_b=START + READY_PROBE * 3)
    # before the batch: how many requests reach both replicas (the role's concurrency is 2)
    plan = replica_spread(before, before, concurrency="2")
    assert plan["requests_to_send"] == 16 and plan["total"] == 0 and plan["ok"] is True
    after = logs(ollama_a=before[0]["log"] + CHAT * 8 + READY_PROBE * 5 + CHAT_500,
                 ollama_b=before[1]["log"] + CHAT * 7 + READY_PROBE * 5)
    spread = replica_spread(after, before, concurrency="2")
    assert [(p["name"], p["requests"], p["succeeded"], p["errors"]) for p in spread["pods"]] == [
        ("ollama-a", 9, 8, 1), ("ollama-b", 7, 7, 0)]
    assert spread["ok"] is True and spread["min_share"] == 0.4375
    assert spread["summary"] == ("16 /api/chat requests over 2 pods: ollama-a 9 (56 %, 1 not 2xx); "
                                 "ollama-b 7 (44 %); min share 44 %")


def test_an_idle_replica_is_named():
    before = logs(ollama_a=START, ollama_b=START)
    after = logs(ollama_a=START + CHAT * 16, ollama_b=START + READY_PROBE * 30)
    spread = replica_spread(after, before)
    assert spread["ok"] is False and spread["idle"] == ["ollama-b"]
    assert spread["summary"].endswith("; IDLE: ollama-b")


def test_a_restarted_pod_counts_its_new_log():
    before = logs(ollama_a=START + CHAT * 20, ollama_b=START)
    after = logs(ollama_a=START + CHAT_500, ollama_b=START + CHAT)
    spread = replica_spread(after, before)
    assert spread["pods"][0]["log"] == "restarted" and spread["pods"][0]["errors"] == 1
    assert spread["total"] == 2 and spread["ok"] is True


def test_before_defaults_to_nothing_read():
    spread = replica_spread(logs(ollama_a=START + CHAT * 2))
    assert spread["pods"][0]["log"] == "new" and spread["total"] == 2


@pytest.mark.parametrize("after, kwargs, message", [
    ({"ollama-a": START}, {}, "replica_spread: after must be a list of {name, log} dicts, one per pod (log: the "
                              "text kubernetes.core.k8s_log returns as log), got dict"),
    (logs(ollama_a=START), {"before": "log"}, "replica_spread: before must be a list of {name, log} dicts"),
    ([{"name": "ollama-a", "log_lines": [CHAT]}], {}, "replica_spread: after[0] has no log: after must be a list"),
    ([{"name": "ollama-a", "log": [CHAT]}], {}, "replica_spread: after[0].log (pod ollama-a) must be a string, got "
                                                "list; pass k8s_log's log, not log_lines"),
    ([], {"requests_per_replica": -1}, "replica_spread: requests_per_replica is -1, it must be at least 1"),
])
def test_bad_input_names_the_argument(after, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        replica_spread(after, **kwargs)
    assert str(err.value).startswith(message)


def test_documentation_matches_the_signature():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc["name"] == "replica_spread"
    assert list(doc["options"]) == ["_input", "before", "path", "method", "concurrency", "requests_per_replica"]
    assert doc["options"]["path"]["default"] == "/api/chat" and doc["options"]["method"]["default"] == "POST"
    assert doc["options"]["requests_per_replica"]["default"] == 8 and doc["options"]["concurrency"]["default"] == 1
    returned = yaml.safe_load(plugin.RETURN)["_value"]["contains"]
    assert set(returned) == set(replica_spread(logs(ollama_a=START), logs(ollama_a=START)))
    examples = yaml.safe_load(plugin.EXAMPLES)
    assert all(task.get("name") for task in examples)
