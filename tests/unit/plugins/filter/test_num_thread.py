"""The num_thread formula, which every role derives the same way."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.num_thread import num_thread
from ansible_collections.aiplatform.ollama.plugins.module_utils import node_profile


@pytest.mark.parametrize("limit,cores,numa,expected", [
    ("1000m", None, 1, 1),
    ("2000m", None, 1, 2),
    ("1500m", None, 1, 1),     # the CFS quota grants 1.5 CPUs: one whole thread
    ("500m", None, 1, 1),      # never below one
    (4, None, 1, 4),
    ("16", 16, 2, 8),          # two NUMA nodes: one node's physical cores cap it
    ("16", 8, 1, 8),           # physical cores cap it (SMT siblings add no bandwidth)
    ("2", 32, 2, 2),
    ("", 12, 2, 6),            # no limit: the cap
])
def test_num_thread(limit, cores, numa, expected):
    assert num_thread(limit, cores, numa) == expected


def test_node_profile_reports_the_same_formula():
    profile = {"physical_cores": 16, "numa_nodes": 2}
    assert node_profile.recommended_num_thread(profile, "16") == num_thread("16", 16, 2) == 8


@pytest.mark.parametrize("limit", ["two", "2 cores", "", True])
def test_num_thread_names_a_bad_limit(limit):
    with pytest.raises(AnsibleFilterError, match="num_thread: .*(CPU quantity|CPU limit)"):
        num_thread(limit)
