"""`kubectl exec` into a pod of the test cluster runs the command on this host, as kwok's ClusterExec
maps it (tests/services/cluster.py): what a diagnosis probe pod relies on to reach loopback services.
Checked through kubectl, the Kubernetes client's exec stream and kubernetes.core.k8s_exec itself,
stdout, stderr and exit codes included."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

NAMESPACE = "aiplatform-test-exec"
POD = "exec-probe"
TAGS = {"models": [{"name": "probe/tiny:latest"}]}


@pytest.fixture(scope="module")
def probe_pod(cluster):
    """A Running pod on a kwok node, deleted (and gone) at the end."""
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    cluster.apply({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": POD}},
        "spec": {"containers": [{"name": "probe", "image": "docker.io/curlimages/curl:8.11.1",
                                 "command": ["sleep", "infinity"]}]},
    })

    def running():
        status = cluster.get("v1", "Pod", POD, NAMESPACE).get("status", {})
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
        return status.get("phase") == "Running" and ready

    cluster.wait_for("the probe pod Running", running, timeout=60)
    yield POD
    cluster.delete("v1", "Pod", POD, NAMESPACE)
    cluster.wait_for("the probe pod deleted", lambda: cluster.find("v1", "Pod", POD, NAMESPACE) is None, timeout=60)
    cluster.delete("v1", "Namespace", NAMESPACE)


@pytest.fixture
def loopback_api():
    """An HTTP server on 127.0.0.1 answering GET /api/tags as Ollama does: only this host reaches it."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(TAGS).encode() if self.path == "/api/tags" else b"{}"
            self.send_response(200 if self.path == "/api/tags" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _fetch(url: str) -> list[str]:
    """A command printing the body of url: curl's job, done by the Python this host has."""
    return ["python3", "-c",
            f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"]


def test_kubectl_exec_runs_the_command_on_this_host(cluster, probe_pod, tmp_path):
    marker = tmp_path / "marker"
    marker.write_text(token := uuid.uuid4().hex)

    assert cluster.exec(NAMESPACE, probe_pod, ["cat", str(marker)]) == token
    assert cluster.exec(NAMESPACE, probe_pod, ["pwd"]).strip() == str(cluster.exec_dir)


def test_kubectl_exec_reports_output_and_exit_code_of_a_failing_command(cluster, probe_pod):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        cluster.exec(NAMESPACE, probe_pod, ["sh", "-c", "echo partial; echo broken >&2; exit 3"])

    assert failed.value.returncode == 3
    assert failed.value.stdout == "partial\n"
    assert "broken" in failed.value.stderr


def _client_exec(cluster, command: list[str]) -> tuple[str, str, dict]:
    """Run command as kubernetes.core.k8s_exec does: the client's exec stream, read until closed,
    then the status on the error channel (3)."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    resp = stream(api.connect_get_namespaced_pod_exec, POD, NAMESPACE, command=command, container="probe",
                  stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
    stdout, stderr = [], []
    while resp.is_open():
        resp.update(timeout=1)
        if resp.peek_stdout():
            stdout.append(resp.read_stdout())
        if resp.peek_stderr():
            stderr.append(resp.read_stderr())
    status = yaml.safe_load(resp.read_channel(3))
    resp.close()
    return "".join(stdout), "".join(stderr), status


def test_client_exec_stream_reaches_a_loopback_service(cluster, probe_pod, loopback_api):
    stdout, stderr, status = _client_exec(cluster, _fetch(loopback_api + "/api/tags"))

    assert status["status"] == "Success", (status, stderr)
    assert json.loads(stdout) == TAGS


def test_client_exec_stream_reports_the_exit_code_on_the_error_channel(cluster, probe_pod):
    stdout, stderr, status = _client_exec(cluster, ["sh", "-c", "echo partial; echo broken >&2; exit 3"])

    assert (stdout, stderr) == ("partial\n", "broken\n")
    assert status["status"] == "Failure"
    assert status["reason"] == "NonZeroExitCode"
    # where kubernetes.core.k8s_exec reads its rc
    assert int(status["details"]["causes"][0]["message"]) == 3


K8S_EXEC_PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Reach the loopback service from the pod
      kubernetes.core.k8s_exec:
        namespace: %(namespace)s
        pod: %(pod)s
        command: %(fetch)s
      register: fetched
    - name: Fail with an exit code
      kubernetes.core.k8s_exec:
        namespace: %(namespace)s
        pod: %(pod)s
        command: sh -c 'echo partial; exit 3'
      register: failing
      failed_when: false
    - name: Keep the results
      ansible.builtin.copy:
        content: "{{ {'fetched': fetched, 'failing': failing} | to_json }}"
        dest: %(results)s
        mode: "0600"
"""


def test_k8s_exec_module_reports_stdout_and_rc(cluster, probe_pod, loopback_api, tmp_path):
    results = tmp_path / "results.json"
    playbook = tmp_path / "k8s_exec.yml"
    # k8s_exec takes one string and shlex-splits it
    fetch = json.dumps(shlex.join(_fetch(loopback_api + "/api/tags")))
    playbook.write_text(K8S_EXEC_PLAYBOOK % {"namespace": NAMESPACE, "pod": probe_pod, "results": results,
                                             "fetch": fetch})
    env = {**os.environ, **cluster.env(), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    run = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(playbook)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr

    outcome = json.loads(results.read_text())
    assert outcome["fetched"]["rc"] == 0
    assert json.loads(outcome["fetched"]["stdout"]) == TAGS
    assert outcome["failing"]["rc"] == 3
    assert outcome["failing"]["stdout"] == "partial\n"
