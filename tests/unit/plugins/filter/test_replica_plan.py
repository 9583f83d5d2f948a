"""How N replicas share the seeded store: each decision of replica_plan, and each refusal."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.replica_plan import FilterModule, replica_plan

LABELS = {"app.kubernetes.io/name": "ollama", "app.kubernetes.io/instance": "ollama"}
ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_a_shared_claim_spreads_and_rolls_when_there_is_room():
    plan = replica_plan(3, ["ReadOnlyMany"], pods_that_fit=4, selector=LABELS)
    assert plan["placement"] == "spread" and plan["update_strategy"] == ROLLING and plan["surge_room"] is True
    assert plan["topology_spread_constraints"] == [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": LABELS}}]
    assert plan["affinity"] == {} and plan["warnings"] == []
    assert plan["lifecycle"] == {"preStop": {"sleep": {"seconds": 30}}}
    assert plan["termination_grace_period_seconds"] == 60


def test_a_read_write_once_claim_keeps_every_replica_on_its_node():
    plan = replica_plan(2, ["ReadWriteOnce"], pods_that_fit=3, selector=LABELS)
    assert plan["placement"] == "one-node" and plan["topology_spread_constraints"] == []
    (term,) = plan["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": LABELS}}
    # one replica too: a rolling update's surge pod must follow it to the claim's node
    assert replica_plan(1, ["ReadWriteOnce"], selector=LABELS)["affinity"] == plan["affinity"]


@pytest.mark.parametrize(("fit", "why"), [(2, "no room for one beside the 2"), (None, "the nodes were not read")])
def test_no_known_room_recreates_and_says_why(fit, why):
    plan = replica_plan(2, ["ReadWriteMany"], pods_that_fit=fit)
    assert plan["update_strategy"] == {"type": "Recreate"}
    (warning,) = plan["warnings"]
    assert why in warning and "ollama_flux_update_strategy: RollingUpdate" in warning


def test_an_explicit_rolling_update_without_room_warns_of_the_stall():
    plan = replica_plan(2, ["ReadWriteOnce"], strategy="RollingUpdate", pods_that_fit=2)
    assert plan["update_strategy"] == ROLLING
    assert "will not schedule" in plan["warnings"][0]


def test_a_store_the_chart_pulls_into_is_recreated_and_keeps_the_charts_hook():
    plan = replica_plan(1, ["ReadWriteOnce"], preseeded=False, pods_that_fit=5, strategy="RollingUpdate")
    assert plan["update_strategy"] == {"type": "Recreate"} and plan["lifecycle"] == {}


def test_no_drain_no_hook():
    plan = replica_plan(1, ["ReadWriteOnce"], drain_seconds=0)
    assert plan["lifecycle"] == {} and plan["termination_grace_period_seconds"] == 30


@pytest.mark.parametrize(("args", "kwargs", "expected"), [
    ((0, ["ReadWriteOnce"]), {}, "ollama_flux_replicas is 0, it must be at least 1"),
    (("two", ["ReadWriteOnce"]), {}, "ollama_flux_replicas must be a whole number, got 'two'"),
    ((True, ["ReadWriteOnce"]), {}, "ollama_flux_replicas must be a whole number, got True"),
    ((2, ["ReadWriteOnce"]), {"preseeded": False}, "ollama_flux_models_preseeded is false"),
    ((2, ["ReadWriteOncePod"]), {}, "ReadWriteOncePod claim is mounted by one pod only"),
    ((3, ["ReadWriteOnce"]), {"pods_that_fit": 2}, "one node can hold 2 Ollama pod(s)"),
    ((3, ["ReadOnlyMany"]), {"pods_that_fit": 1}, "the nodes can hold 1 Ollama pod(s)"),
    ((1, []), {}, "ollama_flux_pvc_access_modes is []"),
    ((1, "ReadWriteOnce"), {}, "give the claim's access modes as a list"),
    ((1, ["ReadWriteOnce"]), {"strategy": "BlueGreen"}, "ollama_flux_update_strategy is 'BlueGreen'"),
    ((1, ["ReadWriteOnce"]), {"drain_seconds": -1}, "ollama_flux_drain_seconds is -1"),
])
def test_bad_input_is_refused_naming_the_variable(args, kwargs, expected):
    with pytest.raises(AnsibleFilterError) as err:
        replica_plan(*args, **kwargs)
    assert expected in str(err.value)


def test_the_filter_is_registered():
    assert FilterModule().filters()["replica_plan"] is replica_plan


def test_each_replica_loads_its_model_before_it_is_ready():
    plan = replica_plan(2, ["ReadWriteOnce"], pods_that_fit=3, selector=LABELS, warm_model="tiny:latest-t2")
    command = plan["lifecycle"]["postStart"]["exec"]["command"]
    # the model is an argument of the script, never part of its text
    assert command[:2] == ["/bin/sh", "-c"] and command[-2:] == ["warm", "tiny:latest-t2"]
    assert "tiny" not in command[2] and '"$1"' in command[2]
    assert plan["lifecycle"]["preStop"] == {"sleep": {"seconds": 30}}


def test_no_warming_without_a_model_or_on_a_store_the_chart_pulls_into():
    assert "postStart" not in replica_plan(1, ["ReadWriteOnce"], selector=LABELS)["lifecycle"]
    # the chart's own postStart pulls there, and a lifecycle of ours would replace it
    assert replica_plan(1, ["ReadWriteOnce"], preseeded=False, warm_model="tiny")["lifecycle"] == {}
    # no drain: the warming alone
    alone = replica_plan(1, ["ReadWriteOnce"], drain_seconds=0, warm_model="tiny")["lifecycle"]
    assert list(alone) == ["postStart"]
