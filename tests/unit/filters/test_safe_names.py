"""dns_label and repo_path by hand: what passes, and that every refusal names the variable and the rule."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.dns_label import FilterModule as DnsLabelFilter
from ansible_collections.aiplatform.ollama.plugins.filter.repo_path import FilterModule as RepoPathFilter
from ansible_collections.aiplatform.ollama.plugins.module_utils.safe_names import NameError_, dns_label, repo_path

HOSTILE = ["$(id)", "`id`", 'a"b', "a'b", "{{ x }}", "${OLLAMA_MODEL}", "a\nb", "../etc", "", None, 7]


@pytest.mark.parametrize("value", ["ollama", "ollama-models", "a", "0", "x" * 63])
def test_dns_labels_pass(value):
    assert dns_label(value) == value


@pytest.mark.parametrize("value", HOSTILE + ["Ollama", "-a", "a-", "a.b", "a/b", "x" * 64])
def test_everything_else_is_not_a_dns_label(value):
    with pytest.raises(NameError_, match=r"^model_cache_namespace is .*, not a DNS label"):
        dns_label(value, "model_cache_namespace")


@pytest.mark.parametrize("value,expected", [("apps/base/ollama", "apps/base/ollama"), ("apps/base/", "apps/base"),
                                            ("a_b/c-d/v1.2", "a_b/c-d/v1.2")])
def test_repo_paths_pass(value, expected):
    assert repo_path(value) == expected


@pytest.mark.parametrize("value", HOSTILE + ["/abs/path", "apps/../..", "apps/./x", "apps//x", "apps/ x"])
def test_everything_else_is_not_a_repo_path(value):
    with pytest.raises(NameError_, match=r"^ollama_flux_gitops_app_path is .*, not a path inside the repository"):
        repo_path(value, "ollama_flux_gitops_app_path")


def test_filters_raise_ansible_errors():
    with pytest.raises(AnsibleFilterError, match="x is '../a', not a path"):
        RepoPathFilter().filters()["repo_path"]("../a", variable="x")
    assert DnsLabelFilter().filters()["dns_label"]("ollama") == "ollama"
