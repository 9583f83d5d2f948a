# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How a batch of requests through a load balancer spread over an Ollama Deployment's replicas,
counted from each pod's own request log.

Ollama 0.18.3 serves its API with gin.Default(), whose logger writes one line per request when the
request ends (gin 1.10 `defaultLogFormatter`; the status and method carry ANSI colours only when the
output is a terminal):

    [GIN] 2026/12/04 - 20:31:02 | 200 |  1.234567s |     10.244.0.7 | POST     "/api/chat"

So the pods say what each of them served, whatever the Service, kube-proxy or the Agent Gateway did:
read each Ready pod's log before the batch and after it, and count the new lines for the path.

How many requests a check needs: with N replicas and k requests each sent to a replica chosen at
random (kube-proxy's iptables mode, a gateway balancing per connection), the chance that some replica
gets none is at most N * (1 - 1/N)**k. With k = 8 N that is below N * e**-8 (0.034 % per replica):
2 * 2**-16 (0.003 %) for 2 replicas, 0.05 % for 4. Round-robin reaches every replica with k >= N.
"""

from __future__ import annotations

import re

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError

DEFAULT_PATH = "/api/chat"
DEFAULT_METHOD = "POST"
DEFAULT_REQUESTS_PER_REPLICA = 8

# colour codes a terminal-attached gin adds around the status and the method
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# the fields of defaultLogFormatter: time, status, latency, client IP, method, the quoted path (with its
# query string); "[GIN-debug]" route listings and Ollama's own slog lines do not match
_GIN_LINE = re.compile(
    r'(?:^|\s)\[GIN\] \d{4}/\d{2}/\d{2} - \d{2}:\d{2}:\d{2} \|\s*(?P<status>\d{3})\s*\|[^|]*\|[^|]*\|'
    r'\s*(?P<method>[A-Z]+)\s+"(?P<path>(?:[^"\\]|\\.)*)"')


class ReplicaSpreadError(InputError):
    """Pod logs or counts that cannot describe a spread."""


def _whole(value, name, minimum=None):
    if isinstance(value, bool):
        raise ReplicaSpreadError(f"{name} must be a whole number, got the boolean {value!r}")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ReplicaSpreadError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, float) and value != number:
        raise ReplicaSpreadError(f"{name} must be a whole number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ReplicaSpreadError(f"{name} is {number}, it must be at least {minimum}")
    return number


def requests_to_send(concurrency, replicas, requests_per_replica=DEFAULT_REQUESTS_PER_REPLICA):
    """How many parallel requests a check of `replicas` Ready replicas sends: `concurrency`, raised to
    `requests_per_replica` per replica when there are two or more (see the module's docstring).

    A `concurrency` below 1 is returned as it is, for the module that sends the requests to refuse
    naming its own option, instead of being hidden behind the per-replica count.
    """
    per_replica = _whole(requests_per_replica, "requests_per_replica", 1)
    count = _whole(replicas, "replicas", 0)
    asked = _whole(concurrency, "concurrency")
    if asked < 1 or count < 2:
        return asked
    return max(asked, per_replica * count)


def request_lines(log, path=DEFAULT_PATH, method=DEFAULT_METHOD):
    """The HTTP statuses of the `method` requests to `path` (its query string ignored) in a pod's log, in
    order. Other methods on the path (a GET of /api/chat, answered 405) are not chats and do not count."""
    statuses = []
    for line in _ANSI.sub("", log).splitlines():
        found = _GIN_LINE.search(line)
        if found and found.group("method") == method and found.group("path").split("?", 1)[0] == path:
            statuses.append(int(found.group("status")))
    return statuses


def _logs(value, argument):
    """{pod name: log} from a list of {name, log}; raises ReplicaSpreadError naming the argument."""
    shape = "a list of {name, log} dicts, one per pod (log: the text kubernetes.core.k8s_log returns as log)"
    if not isinstance(value, (list, tuple)):
        raise ReplicaSpreadError(f"{argument} must be {shape}, got {type(value).__name__}")
    logs = {}
    for index, entry in enumerate(value):
        where = f"{argument}[{index}]"
        if not isinstance(entry, dict):
            raise ReplicaSpreadError(f"{where} must be a dict with name and log, got {type(entry).__name__}")
        missing = [key for key in ("name", "log") if key not in entry]
        if missing:
            raise ReplicaSpreadError(f"{where} has no {' and no '.join(missing)}: {argument} must be {shape}")
        name, log = entry["name"], entry["log"]
        if not isinstance(name, str) or not name:
            raise ReplicaSpreadError(f"{where}.name must be a pod name (a non-empty string), got {name!r}")
        if not isinstance(log, str):
            raise ReplicaSpreadError(
                f"{where}.log (pod {name}) must be a string, got {type(log).__name__}; pass k8s_log's log, "
                f"not log_lines")
        if name in logs:
            raise ReplicaSpreadError(f"{argument} lists pod {name} twice")
        logs[name] = log
    return logs


def _since_before(before, after):
    """The part of `after` written since `before` was read, and how the log went on: `continued`, or
    `restarted` when `after` does not begin with `before` (the container restarted, or the kubelet
    rotated the log: either way the log starts afresh), or `new` for a pod not read before."""
    if before is None:
        return after, "new"
    if after.startswith(before):
        return after[len(before):], "continued"
    return after, "restarted"


def _pct(share):
    return f"{100 * share:.0f} %"


def spread(after, before=(), path=DEFAULT_PATH, concurrency=1, requests_per_replica=DEFAULT_REQUESTS_PER_REPLICA,
           method=DEFAULT_METHOD):
    """How the `method` requests to `path` logged between `before` and `after` spread over the pods of `after`.

    `after` and `before` are lists of {name, log}. A pod of `before` missing from `after` is listed in
    `gone` and not judged. Raises ReplicaSpreadError naming the argument for input of another shape.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise ReplicaSpreadError(f"path must be a URL path such as {DEFAULT_PATH}, got {path!r}")
    if not isinstance(method, str) or not method.isalpha() or not method.isupper():
        raise ReplicaSpreadError(f"method must be an HTTP method in capitals such as {DEFAULT_METHOD}, got {method!r}")
    after_logs = _logs(after, "after")
    before_logs = _logs(list(before) if isinstance(before, tuple) else before, "before")
    pods = []
    for name, log in after_logs.items():
        new, state = _since_before(before_logs.get(name), log)
        statuses = request_lines(new, path, method)
        succeeded = sum(1 for status in statuses if 200 <= status < 300)
        pods.append({"name": name, "requests": len(statuses), "succeeded": succeeded,
                     "errors": len(statuses) - succeeded, "log": state})
    total = sum(pod["requests"] for pod in pods)
    for pod in pods:
        pod["share"] = round(pod["requests"] / total, 4) if total else 0.0
    idle = [pod["name"] for pod in pods if pod["requests"] == 0]
    judged = len(pods) >= 2 and total >= len(pods)
    result = {
        "path": path,
        "pods": pods,
        "total": total,
        "min_share": min((pod["share"] for pod in pods), default=0.0),
        "idle": idle,
        "gone": [name for name in before_logs if name not in after_logs],
        "judged": judged,
        "ok": not (judged and idle),
        "requests_to_send": requests_to_send(concurrency, len(pods), requests_per_replica),
    }
    result["summary"] = _summary(result)
    return result


def _summary(result):
    pods, total, path = result["pods"], result["total"], result["path"]
    plural = "" if total == 1 else "s"
    if not pods:
        line = f"no pod to count {path} requests on"
    else:
        counts = []
        for pod in pods:
            notes = [_pct(pod["share"])] if total else []
            if pod["errors"]:
                notes.append(f"{pod['errors']} not 2xx")
            if pod["log"] != "continued":
                notes.append("log restarted" if pod["log"] == "restarted" else "not read before")
            counts.append(f"{pod['name']} {pod['requests']}" + (f" ({', '.join(notes)})" if notes else ""))
        if len(pods) == 1:
            line = f"{total} {path} request{plural} on 1 pod, nothing to spread: {counts[0]}"
        else:
            line = f"{total} {path} request{plural} over {len(pods)} pods: {'; '.join(counts)}"
            if not result["judged"]:
                line += f"; too few to judge (at least {len(pods)} needed)"
            elif result["idle"]:
                line += f"; IDLE: {', '.join(result['idle'])}"
            else:
                line += f"; min share {_pct(result['min_share'])}"
    if result["gone"]:
        line += f"; not read after the requests: {', '.join(result['gone'])}"
    return line
