"""The steps of a model rollout from what is live and what is recorded: each path a rerun can take,
each refusal."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.rollout_plan import FilterModule, rollout_plan
from ansible_collections.aiplatform.ollama.plugins.filter.serving_pods import serving_pods


def release(model, served):
    return {"spec": {"values": {"podAnnotations": {"aiplatform.ollama/model": model,
                                                   "aiplatform.ollama/served-model": served}}}}


SERVING_A = release("a:1", "a:1-t2")


def test_a_new_model_is_seeded_beside_flipped_verified_then_the_old_one_pruned():
    plan = rollout_plan("b:1", SERVING_A, {}, cpu_limit="2000m")
    assert plan["steps"] == ["seed", "flip", "verify", "prune"]
    assert (plan["from"], plan["from_served"], plan["to"], plan["to_served"]) == ("a:1", "a:1-t2", "b:1", "b:1-t2")
    assert plan["prune_models"] == ["a:1", "a:1-t2"]
    assert plan["phases"] == {"seed": "seeded", "flip": "flipped", "verify": "verified", "prune": "pruned"}
    assert not plan["rollback"]


def test_without_prune_the_old_model_stays():
    plan = rollout_plan("b:1", SERVING_A, {}, prune=False, cpu_limit="2000m")
    assert plan["steps"] == ["seed", "flip", "verify"] and plan["prune_models"] == []
    assert "keep a:1 in the store" in plan["summary"]


def test_alignment_off_serves_the_model_itself():
    assert rollout_plan("b:1", SERVING_A, {}, alignment="off")["to_served"] == "b:1"


@pytest.mark.parametrize("phase", ["seeded", None])
def test_stopped_before_the_flip_the_rerun_takes_every_step(phase):
    record = {"from": "a:1", "from_served": "a:1-t2", "to": "b:1", "phase": phase} if phase else {}
    assert rollout_plan("b:1", SERVING_A, record, cpu_limit="2000m")["steps"] == ["seed", "flip", "verify", "prune"]


@pytest.mark.parametrize("phase", ["flipped", "verified"])
def test_stopped_after_the_flip_the_rerun_verifies_and_prunes_the_recorded_model(phase):
    record = {"from": "a:1", "from_served": "a:1-t2", "to": "b:1", "phase": phase}
    plan = rollout_plan("b:1", release("b:1", "b:1-t2"), record)
    assert plan["steps"] == ["verify", "prune"] and plan["prune_models"] == ["a:1", "a:1-t2"]
    assert plan["to_served"] == "b:1-t2" and "stopped after its" in plan["summary"]


@pytest.mark.parametrize("record", [{}, {"from": "a:1", "to": "b:1", "phase": "pruned"},
                                    {"from": "b:1", "to": "a:1", "phase": "rolled-back"}])
def test_a_finished_rollout_plans_nothing(record):
    plan = rollout_plan("b:1", release("b:1", "b:1-t2"), record)
    assert plan["steps"] == [] and plan["prune_models"] == [] and "nothing to roll out" in plan["summary"]


def test_a_rollback_flips_to_the_recorded_model_and_verifies_it():
    record = {"from": "a:1", "from_served": "a:1-t2", "to": "b:1", "phase": "verified"}
    plan = rollout_plan("b:1", release("b:1", "b:1-t2"), record, rollback=True)
    assert plan["rollback"] and plan["steps"] == ["flip", "verify"] and plan["prune_models"] == []
    assert (plan["to"], plan["to_served"]) == ("a:1", "a:1-t2")
    assert plan["phases"] == {"flip": "rolling-back", "verify": "rolled-back"}
    assert "nothing is downloaded" in plan["summary"]


def test_a_rollback_stopped_after_its_flip_is_finished_not_reversed():
    record = {"from": "b:1", "from_served": "b:1-t2", "to": "a:1", "phase": "rolling-back"}
    plan = rollout_plan("b:1", SERVING_A, record, rollback=True)
    assert plan["steps"] == ["verify"] and plan["to"] == "a:1" and plan["prune_models"] == []
    # and a rollout asked for the other model afterwards starts afresh, pruning nothing it should keep
    assert rollout_plan("a:1", SERVING_A, record)["steps"] == []


def test_a_rollback_to_a_pruned_model_is_refused_naming_the_roll_forward():
    record = {"from": "a:1", "from_served": "a:1-t2", "to": "b:1", "phase": "pruned"}
    with pytest.raises(AnsibleFilterError, match=r"a:1 is no longer in the store.*set ollama_flux_model: a:1"):
        rollout_plan("b:1", release("b:1", "b:1-t2"), record, rollback=True)


@pytest.mark.parametrize("record", [{}, {"from": "a:1", "to": "c:1", "phase": "verified"},
                                    {"from": "b:1", "to": "a:1", "phase": "rolled-back"}])
def test_a_rollback_with_nothing_recorded_for_the_served_model_is_refused(record):
    with pytest.raises(AnsibleFilterError, match="nothing to roll back to"):
        rollout_plan("b:1", SERVING_A if record.get("to") == "a:1" else release("b:1", "b:1-t2"), record,
                     rollback=True)


def test_nothing_deployed_or_a_deployment_without_its_model_is_refused():
    with pytest.raises(AnsibleFilterError, match=r"HelmRelease does not exist.*site.yml"):
        rollout_plan("b:1", None)
    with pytest.raises(AnsibleFilterError, match=r"deploy it once with deploy.yml"):
        rollout_plan("b:1", {"spec": {"values": {}}})


def test_a_bad_model_name_is_refused_naming_the_variable():
    with pytest.raises(AnsibleFilterError, match="ollama_flux_model"):
        rollout_plan("bad name", SERVING_A)
    with pytest.raises(AnsibleFilterError, match="ollama_flux_model is empty"):
        rollout_plan("", SERVING_A)


def pod(name, model, served, stopping=False):
    meta = {"name": name, "annotations": {"aiplatform.ollama/model": model, "aiplatform.ollama/served-model": served}}
    if stopping:
        meta["deletionTimestamp"] = "2026-12-05T00:00:00Z"
    return {"metadata": meta}


def test_serving_pods_names_each_pod_that_holds_a_model_to_remove_draining_ones_included():
    pods = [pod("new-1", "b:1", "b:1-t2"), pod("old-1", "a:1", "a:1-t2", stopping=True), {"metadata": {"name": "x"}}]
    assert serving_pods(pods, ["a:1", "a:1-t2"]) == ["old-1 (a:1, stopping)"]
    assert serving_pods(pods, ["b:1-t2"]) == ["new-1 (b:1-t2)"]
    assert serving_pods(pods, []) == [] and serving_pods([], ["a:1"]) == []


def test_the_filters_are_registered():
    assert FilterModule().filters() == {"rollout_plan": rollout_plan}
