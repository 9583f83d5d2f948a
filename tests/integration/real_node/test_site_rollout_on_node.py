"""rollout.yml on the real node, after the site tests left the inventory's model served by prod's two
replicas: the next model is seeded beside it under load, the deployment flips with no request lost,
a rerun finishes the rollout by pruning exactly the old model's own blobs, and a verification that
fails rolls back to the served model without downloading it. The tests run in file order.
"""

from __future__ import annotations

import collections
import json
import re

import pytest

from tests.integration.real_node.conftest import CONTROLLER_POD, GATEWAY_NAMESPACE, NAMESPACE, RELEASE, gateway_load
from tests.services.real_node import pod_ready

RECORD = f"{RELEASE}-rollout"
NOT_THE_DIGEST = "sha256:" + "0" * 64
# a rerun's verification: the probes through the Service and the gateway, without the fan-out and spread
# checks the first run made
PROBES_ONLY = {"inference_check_concurrency": 0, "inference_check_spread": False}


@pytest.fixture(scope="module")
def next_model(node_registry, model_factory):
    """A second tiny model: its weights differ, its template and parameters are the first one's."""
    return node_registry.push_model(model_factory.tiny(seed=5), name="library/next", tag="latest")


def server_pods(cluster) -> list[dict]:
    return [pod for pod in cluster.get("v1", "Pod", namespace=NAMESPACE,
                                       label_selector=f"app.kubernetes.io/instance={RELEASE}")["items"]
            if not pod["metadata"].get("deletionTimestamp")]


def store_root(cluster, node):
    return node.volume_path(cluster.get("v1", "PersistentVolumeClaim", "ollama-models", NAMESPACE)) / "models"


def blobs(cluster, node) -> set[str]:
    return {path.name.replace("-", ":", 1) for path in (store_root(cluster, node) / "blobs").iterdir()}


def manifests(cluster, node) -> dict[str, set[str]]:
    """Each manifest in the store (its path under manifests/) and the blobs it references."""
    root = store_root(cluster, node) / "manifests"
    found = {}
    for path in root.rglob("*"):
        if path.is_file():
            manifest = json.loads(path.read_text())
            found[str(path.relative_to(root))] = {d["digest"] for d in [manifest["config"], *manifest["layers"]]}
    return found


def cdn_downloads(node_registry, cluster, since: int = 0) -> tuple[int, dict[str, int]]:
    """The CDN log's length, and the body bytes of each blob it sent by GET after line `since`, except to
    the controller pod, whose preflight reads a few KB of each model's header (never the weights)."""
    controller = cluster.get("v1", "Pod", CONTROLLER_POD, GATEWAY_NAMESPACE)["status"]["podIP"]
    lines = (node_registry.workdir / "cdn" / "access.log").read_text().splitlines()
    sent: dict[str, int] = collections.Counter()
    for line in lines[since:]:
        match = re.match(r'(\S+) .*"GET \S*/sha256/[0-9a-f]{2}/([0-9a-f]{64})/data [^"]*" 20\d (\d+)', line)
        if match and match.group(1) != controller:
            sent["sha256:" + match.group(2)] += int(match.group(3))
    return len(lines), dict(sent)


def record(cluster) -> dict:
    return (cluster.find("v1", "ConfigMap", RECORD, NAMESPACE) or {}).get("data") or {}


def digests(model) -> set[str]:
    return {d["digest"] for d in [model.manifest["config"], *model.manifest["layers"]]}


def sizes(model) -> dict[str, int]:
    return {d["digest"]: d["size"] for d in [model.manifest["config"], *model.manifest["layers"]]}


def served_pods_annotated(cluster, model: str) -> list[dict]:
    pods = server_pods(cluster)
    assert len(pods) == 2 and all(pod_ready(p) for p in pods), [p["metadata"]["name"] for p in pods]
    assert {p["metadata"]["annotations"]["aiplatform.ollama/model"] for p in pods} == {model}
    return pods


def test_a_rollout_under_load_loses_no_request_and_downloads_the_new_model_once(
        cluster, node, node_registry, node_model, next_model, run_on_node):
    served_pods_annotated(cluster, node_model.ref)
    in_store = blobs(cluster, node)
    fetched, _ = cdn_downloads(node_registry, cluster)

    # clients keep calling the served model while the rollout seeds, flips and verifies the next one
    with gateway_load(cluster, f"{node_model.ref}-t2") as codes:
        run = run_on_node("rollout.yml", {"model_rollout_model": next_model.ref, "model_rollout_prune": False})
    assert run.returncode == 0, run.output[-8000:]
    assert "Steps: seed, flip, verify." in run.said, run.said[-4000:]
    assert len(codes) >= 8 and set(codes) == {"200"}, collections.Counter(codes)

    # the new pods serve the next model, each having loaded it before it was Ready
    for pod in served_pods_annotated(cluster, next_model.ref):
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    # the seed Job downloaded each blob of the next model the store lacked, once; nothing of the old one
    _, downloads = cdn_downloads(node_registry, cluster, fetched)
    assert downloads == {d: size for d, size in sizes(next_model).items() if d not in in_store}, downloads
    # both models are in the store until the rollout is verified and the prune runs
    assert digests(node_model) | digests(next_model) <= blobs(cluster, node)
    assert record(cluster) == {"from": node_model.ref, "from_served": f"{node_model.ref}-t2", "to": next_model.ref,
                               "phase": "verified"}


def test_a_rerun_finishes_the_rollout_pruning_exactly_the_old_models_own_blobs(
        cluster, node, node_registry, node_model, next_model, run_on_node):
    before, held = blobs(cluster, node), manifests(cluster, node)
    old = {path for path in held if path.endswith(("library/tiny/latest", "library/tiny/latest-t2"))}
    assert len(old) == 2, held
    own = set().union(*(held[path] for path in old)) - set().union(*(refs for path, refs in held.items()
                                                                    if path not in old))
    assert own  # the weights; the template and parameters are the next model's too
    fetched, _ = cdn_downloads(node_registry, cluster)

    run = run_on_node("rollout.yml", {"model_rollout_model": next_model.ref, **PROBES_ONLY})
    assert run.returncode == 0, run.output[-8000:]
    assert "Steps: verify, prune." in run.said, run.said[-4000:]
    assert before - blobs(cluster, node) == own
    assert set(manifests(cluster, node)) == set(held) - old
    assert cdn_downloads(node_registry, cluster, fetched)[1] == {}
    assert record(cluster)["phase"] == "pruned"

    again = run_on_node("rollout.yml", {"model_rollout_model": next_model.ref})
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-6000:]
    assert "nothing to roll out" in again.said


def test_removing_the_served_model_is_refused_naming_the_pods_that_serve_it(cluster, next_model, run_on_node):
    jobs = {job["metadata"]["name"] for job in cluster.get("batch/v1", "Job", namespace=NAMESPACE)["items"]}
    refused = run_on_node("seed_models.yml", {"model_cache_absent_models": [next_model.ref]})
    assert refused.returncode != 0
    assert f"model_cache_absent_models names a model these pods of the release {RELEASE} serve" in refused.said, \
        refused.said[-4000:]
    for pod in served_pods_annotated(cluster, next_model.ref):
        assert f"{pod['metadata']['name']} ({next_model.ref})" in refused.said
    # refused before its Job: nothing ran on the claim
    assert {job["metadata"]["name"] for job in cluster.get("batch/v1", "Job", namespace=NAMESPACE)["items"]} == jobs


def test_check_mode_prints_the_steps_and_changes_nothing(cluster, node_model, next_model, run_on_node):
    state = record(cluster)
    checked = run_on_node("rollout.yml", {"model_rollout_model": node_model.ref}, "--check")
    assert checked.returncode == 0, checked.output[-6000:]
    assert f"roll out {node_model.ref} beside {next_model.ref}" in checked.said, checked.said[-3000:]
    assert "Steps: seed, flip, verify, prune." in checked.said and "Check mode: nothing is changed." in checked.said
    assert record(cluster) == state
    served_pods_annotated(cluster, next_model.ref)


def test_a_rollback_to_a_pruned_model_is_refused_before_anything_changes(cluster, node_model, run_on_node):
    state = record(cluster)
    refused = run_on_node("rollout.yml", {"model_rollout_rollback": True})
    assert refused.returncode != 0
    assert f"{node_model.ref} is no longer in the store" in refused.said, refused.said[-4000:]
    assert f"set ollama_flux_model: {node_model.ref}" in refused.said
    assert record(cluster) == state


def test_a_failed_verification_rolls_back_without_downloading_the_served_model(
        cluster, node, node_registry, node_model, next_model, run_on_node):
    in_store = blobs(cluster, node)
    fetched, _ = cdn_downloads(node_registry, cluster)

    failed = run_on_node("rollout.yml", {"model_rollout_model": node_model.ref, **PROBES_ONLY,
                                         "inference_check_expected_digest": NOT_THE_DIGEST})
    assert failed.returncode != 0
    said = failed.said
    rolled_back = f"{node_model.ref} failed its flip or its verification, so the deployment was rolled back to"
    assert f"{rolled_back} {next_model.ref}" in said, said[-6000:]
    assert "nothing was downloaded" in said
    # the rollout seeded its model once; the rollback fetched nothing, not a byte of the served model
    _, downloads = cdn_downloads(node_registry, cluster, fetched)
    assert downloads == {d: size for d, size in sizes(node_model).items() if d not in in_store}, downloads
    served_pods_annotated(cluster, next_model.ref)
    assert record(cluster) == {"from": next_model.ref, "from_served": f"{next_model.ref}-t2", "to": node_model.ref,
                               "phase": "rolled-back"}
    # a rollback recorded is no rollout to return from
    refused = run_on_node("rollout.yml", {"model_rollout_rollback": True})
    assert refused.returncode != 0 and "nothing to roll back to" in refused.said, refused.said[-4000:]


def test_the_models_a_rollout_sets_cannot_be_extra_vars(run_on_node):
    refused = run_on_node("rollout.yml", {"ollama_flux_model": "library/other:1"})
    assert refused.returncode != 0
    assert "ollama_flux_model is given as an extra var" in refused.said, refused.said[-3000:]
    assert "model_rollout_model" in refused.said
