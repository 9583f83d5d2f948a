"""replica_spread: the requests each Ollama replica served, counted in its own gin request log.

The log lines are Ollama 0.18.3's own (gin 1.10's defaultLogFormatter, no colours off a terminal), taken
from servers this suite ran, with the client address a pod sees behind the gateway.

The last tests are the filter the inference_check role judges the replicas with, on Ollama's own log lines:
what the role relies on, the shapes it passes, the names in its errors, and the documentation ansible-doc shows.
"""

from __future__ import annotations

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter import replica_spread as plugin
from ansible_collections.aiplatform.ollama.plugins.filter.replica_spread import FilterModule, replica_spread
from ansible_collections.aiplatform.ollama.plugins.module_utils.replica_spread import (
    ReplicaSpreadError,
    request_lines,
    requests_to_send,
    spread,
)

STARTUP = (
    'time=2026-12-04T20:30:58.112Z level=INFO source=routes.go:1740 msg="server config" '
    'env="map[OLLAMA_HOST:http://0.0.0.0:11434 OLLAMA_NUM_PARALLEL:1]"\n'
    'time=2026-12-04T20:30:58.114Z level=INFO source=routes.go:1790 msg="Listening on [::]:11434 (version 0.18.3)"\n'
)
# the kubelet's readiness probe (GET /, from the node's bridge address) and the probes of ollama_health
PROBES = (
    '[GIN] 2026/12/04 - 20:31:00 | 200 |      49.634µs |      10.244.0.1 | GET      "/"\n'
    '[GIN] 2026/12/04 - 20:31:00 | 200 |      43.053µs |      10.244.0.1 | HEAD     "/"\n'
    '[GIN] 2026/12/04 - 20:31:01 | 200 |     109.683µs |      10.244.0.7 | GET      "/api/version"\n'
    '[GIN] 2026/12/04 - 20:31:01 | 200 |     291.413µs |      10.244.0.7 | GET      "/api/tags"\n'
    '[GIN] 2026/12/04 - 20:31:01 | 200 |    52.25177ms |      10.244.0.7 | POST     "/api/generate"\n'
    '[GIN] 2026/12/04 - 20:31:01 | 200 |   38.705009ms |      10.244.0.7 | POST     "/v1/chat/completions"\n'
)


def chat(status=200, second=2, latency="  2.289272524s"):
    return f'[GIN] 2026/12/04 - 20:31:{second:02d} | {status} | {latency} |      10.244.0.7 | POST     "/api/chat"\n'


# what the kernel killing the model runner looks like from the server: a 500 after "Load failed"
RUNNER_KILLED = (
    'time=2026-12-04T20:31:03.754Z level=INFO source=sched.go:511 msg="Load failed" '
    'model=/root/.ollama/models/blobs/sha256-44a1cb3a0446 error="llama runner process has terminated: %!w(<nil>)"\n'
    + chat(500, 3, latency=" 280.694618ms")
)


def pod(name, log):
    return {"name": name, "log": log}


def test_counts_only_chats_not_probes_or_other_apis():
    log = STARTUP + PROBES + chat() + chat(404) + PROBES + chat(second=5)
    assert request_lines(log) == [200, 404, 200]
    assert request_lines(log, path="/api/generate") == [200, 200]
    assert request_lines(log, path="/", method="GET") == [200, 200]


def test_other_methods_and_route_listings_on_the_path_are_not_chats():
    log = ('[GIN-debug] POST   /api/chat                 --> github.com/ollama/ollama/server.(*Server).ChatHandler-fm '
           '(5 handlers)\n'
           '[GIN] 2026/12/04 - 20:26:34 | 405 |       6.399µs |       127.0.0.1 | GET      "/api/chat"\n'
           '[GIN] 2026/12/04 - 20:26:34 | 200 |  2.289272524s |       127.0.0.1 | POST     "/api/chat/extra"\n'
           '[GIN] 2026/12/04 - 20:26:34 | 400 |     144.805µs |       127.0.0.1 | POST     "/api/chat?x=1"\n')
    # the query string is not part of the path
    assert request_lines(log) == [400]


def test_coloured_lines_of_a_terminal_count_too():
    # gin colours the status and the method when its output is a terminal (a pod with tty: true)
    log = ('[GIN] 2026/12/04 - 20:31:02 |\x1b[97;42m 200 \x1b[0m|  2.289272524s |      10.244.0.7 |'
           '\x1b[97;46m POST    \x1b[0m "/api/chat"\n')
    assert request_lines(log) == [200]


def test_a_line_with_a_timestamp_prefix_counts():
    # kubectl logs --timestamps puts the kubelet's time first
    assert request_lines("2026-12-04T20:31:02.512345678Z " + chat()) == [200]


def test_new_requests_are_those_logged_after_the_first_read():
    before = [pod("ollama-a", STARTUP + PROBES + chat()), pod("ollama-b", STARTUP + PROBES)]
    after = [pod("ollama-a", before[0]["log"] + chat() * 5 + PROBES + chat(500)),
             pod("ollama-b", before[1]["log"] + PROBES + chat() * 10)]
    result = spread(after, before)
    assert result["pods"] == [
        {"name": "ollama-a", "requests": 6, "succeeded": 5, "errors": 1, "log": "continued", "share": 0.375},
        {"name": "ollama-b", "requests": 10, "succeeded": 10, "errors": 0, "log": "continued", "share": 0.625},
    ]
    assert result["total"] == 16 and result["min_share"] == 0.375
    assert result["idle"] == [] and result["gone"] == []
    assert result["judged"] is True and result["ok"] is True
    assert result["summary"] == ("16 /api/chat requests over 2 pods: ollama-a 6 (38 %, 1 not 2xx); "
                                 "ollama-b 10 (62 %); min share 38 %")


def test_a_ready_replica_that_served_none_fails():
    # only readiness probes reached ollama-b: the gateway kept one upstream connection to ollama-a
    before = [pod("ollama-a", STARTUP), pod("ollama-b", STARTUP), pod("ollama-c", STARTUP)]
    after = [pod("ollama-a", STARTUP + chat() * 9), pod("ollama-b", STARTUP + PROBES * 4),
             pod("ollama-c", STARTUP + chat() * 7)]
    result = spread(after, before)
    assert result["idle"] == ["ollama-b"] and result["judged"] is True and result["ok"] is False
    assert result["min_share"] == 0.0
    assert result["summary"] == ("16 /api/chat requests over 3 pods: ollama-a 9 (56 %); ollama-b 0 (0 %); "
                                 "ollama-c 7 (44 %); IDLE: ollama-b")


def test_a_replica_that_answered_only_errors_is_not_idle():
    # the balancer reached it; the failed chats are the concurrency check's to report
    before = [pod("ollama-a", STARTUP), pod("ollama-b", STARTUP)]
    after = [pod("ollama-a", STARTUP + chat() * 3), pod("ollama-b", STARTUP + RUNNER_KILLED)]
    result = spread(after, before)
    assert result["ok"] is True and result["idle"] == []
    assert result["pods"][1] == {"name": "ollama-b", "requests": 1, "succeeded": 0, "errors": 1,
                                 "log": "continued", "share": 0.25}


def test_a_restarted_container_is_counted_on_its_new_log_alone():
    # its log after the requests does not begin with the one read before: count only the new log
    old = STARTUP + PROBES + chat() * 40
    before = [pod("ollama-a", old), pod("ollama-b", STARTUP)]
    after = [pod("ollama-a", STARTUP + chat() * 2), pod("ollama-b", STARTUP + chat() * 3)]
    result = spread(after, before)
    assert [(p["name"], p["requests"], p["log"]) for p in result["pods"]] == [
        ("ollama-a", 2, "restarted"), ("ollama-b", 3, "continued")]
    assert "ollama-a 2 (40 %, log restarted)" in result["summary"]


def test_a_restarted_container_that_served_none_is_idle_despite_its_old_log():
    before = [pod("ollama-a", STARTUP + chat() * 40), pod("ollama-b", STARTUP)]
    after = [pod("ollama-a", STARTUP + PROBES), pod("ollama-b", STARTUP + chat() * 4)]
    result = spread(after, before)
    assert result["idle"] == ["ollama-a"] and result["ok"] is False


def test_a_pod_not_read_before_counts_its_whole_log_and_one_gone_is_named():
    before = [pod("ollama-a", STARTUP), pod("ollama-old", STARTUP + chat())]
    after = [pod("ollama-a", STARTUP + chat() * 2), pod("ollama-new", STARTUP + chat() * 2)]
    result = spread(after, before)
    assert [(p["name"], p["requests"], p["log"]) for p in result["pods"]] == [
        ("ollama-a", 2, "continued"), ("ollama-new", 2, "new")]
    assert result["gone"] == ["ollama-old"]
    assert result["summary"].endswith("; not read after the requests: ollama-old")


def test_a_partial_last_line_read_before_is_not_counted_twice_or_half():
    # the first read ended in the middle of a line the server was writing: that request came before
    line = chat()
    before = [pod("ollama-a", STARTUP + line[:30]), pod("ollama-b", STARTUP)]
    after = [pod("ollama-a", STARTUP + line + chat() * 2), pod("ollama-b", STARTUP + chat())]
    assert [p["requests"] for p in spread(after, before)["pods"]] == [2, 1]


def test_one_pod_is_reported_and_never_fails():
    result = spread([pod("ollama-a", STARTUP + PROBES)], [pod("ollama-a", STARTUP)])
    assert result["judged"] is False and result["ok"] is True and result["idle"] == ["ollama-a"]
    assert result["summary"] == "0 /api/chat requests on 1 pod, nothing to spread: ollama-a 0"
    served = spread([pod("ollama-a", STARTUP + chat())], [pod("ollama-a", STARTUP)])
    assert served["summary"] == "1 /api/chat request on 1 pod, nothing to spread: ollama-a 1 (100 %)"


def test_fewer_requests_than_pods_are_not_judged():
    before = [pod(name, STARTUP) for name in ("ollama-a", "ollama-b", "ollama-c")]
    after = [pod("ollama-a", STARTUP + chat() * 2)] + before[1:]
    result = spread(after, before)
    assert result["judged"] is False and result["ok"] is True and result["idle"] == ["ollama-b", "ollama-c"]
    assert result["summary"].endswith("; too few to judge (at least 3 needed)")


def test_no_pods():
    result = spread([], [])
    assert result["total"] == 0 and result["min_share"] == 0.0 and result["ok"] is True
    assert result["summary"] == "no pod to count /api/chat requests on"


def test_another_path_and_method():
    before = [pod("ollama-a", STARTUP), pod("ollama-b", STARTUP)]
    after = [pod("ollama-a", STARTUP + PROBES), pod("ollama-b", STARTUP + PROBES)]
    assert spread(after, before, path="/v1/chat/completions")["total"] == 2
    assert spread(after, before, path="/", method="HEAD")["total"] == 2


@pytest.mark.parametrize("concurrency, replicas, per_replica, expected", [
    (2, 2, 8, 16),    # 2 * 2**-16 that one of two replicas gets none of 16 random choices
    (2, 3, 8, 24),
    (40, 3, 8, 40),   # already enough
    (2, 1, 8, 2),     # one replica: nothing to spread, the concurrency asked for
    (2, 0, 8, 2),
    ("3", "2", "4", 8),  # Jinja hands numbers over as strings
    (0, 4, 8, 0),     # 0 and negatives stay for the module to refuse, naming its own option
    (-1, 4, 8, -1),
])
def test_requests_to_send(concurrency, replicas, per_replica, expected):
    assert requests_to_send(concurrency, replicas, per_replica) == expected


def test_the_spread_gives_the_requests_to_send_for_its_pods():
    logs = [pod("ollama-a", STARTUP), pod("ollama-b", STARTUP)]
    assert spread(logs, logs, concurrency=2)["requests_to_send"] == 16
    assert spread(logs, logs, concurrency=2, requests_per_replica=3)["requests_to_send"] == 6
    assert spread(logs[:1], logs[:1], concurrency=2)["requests_to_send"] == 2


@pytest.mark.parametrize("after, before, kwargs, message", [
    ("log text", [], {}, "after must be a list of {name, log} dicts, one per pod (log: the text "
                         "kubernetes.core.k8s_log returns as log), got str"),
    ([], {"ollama-a": ""}, {}, "before must be a list of {name, log} dicts, one per pod"),
    (["ollama-a"], [], {}, "after[0] must be a dict with name and log, got str"),
    ([{"name": "ollama-a"}], [], {}, "after[0] has no log: after must be a list of {name, log} dicts"),
    ([], [{"log": ""}], {}, "before[0] has no name: before must be"),
    ([{}], [], {}, "after[0] has no name and no log"),
    ([{"name": "", "log": ""}], [], {}, "after[0].name must be a pod name (a non-empty string), got ''"),
    ([{"name": "ollama-a", "log": ["[GIN] ..."]}], [], {},
     "after[0].log (pod ollama-a) must be a string, got list; pass k8s_log's log, not log_lines"),
    ([{"name": "ollama-a", "log": None}], [], {}, "after[0].log (pod ollama-a) must be a string, got NoneType"),
    ([pod("ollama-a", ""), pod("ollama-a", "")], [], {}, "after lists pod ollama-a twice"),
    ([], [], {"path": "api/chat"}, "path must be a URL path such as /api/chat, got 'api/chat'"),
    ([], [], {"method": "post"}, "method must be an HTTP method in capitals such as POST, got 'post'"),
    ([], [], {"requests_per_replica": 0}, "requests_per_replica is 0, it must be at least 1"),
    ([], [], {"requests_per_replica": "many"}, "requests_per_replica must be a whole number, got 'many'"),
    ([], [], {"concurrency": 2.5}, "concurrency must be a whole number, got 2.5"),
    ([], [], {"concurrency": True}, "concurrency must be a whole number, got the boolean True"),
])
def test_bad_input_is_named(after, before, kwargs, message):
    with pytest.raises(ReplicaSpreadError) as err:
        spread(after, before, **kwargs)
    assert str(err.value).startswith(message)
    assert err.value.kind == "invalid_input"


# the replica_spread filter

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
