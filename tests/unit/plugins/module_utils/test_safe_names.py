"""dns_label, repo_path and model_or_placeholder by hand: what passes, and that every refusal names the
variable and the rule."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.dns_label import FilterModule as DnsLabelFilter
from ansible_collections.aiplatform.ollama.plugins.filter.model_or_placeholder import (
    FilterModule as ModelOrPlaceholderFilter,
)
from ansible_collections.aiplatform.ollama.plugins.filter.repo_path import FilterModule as RepoPathFilter
from ansible_collections.aiplatform.ollama.plugins.module_utils.safe_names import (
    NameError_,
    dns_label,
    model_or_placeholder,
    repo_path,
)

HOSTILE = ["$(id)", "`id`", 'a"b', "a'b", "{{ x }}", "${OLLAMA_MODEL}", "a\nb", "../etc", "", None, 7,
           "ollama\n"]  # a trailing newline slips past a regex match anchored with $


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


@pytest.mark.parametrize("value", ["${OLLAMA_MODEL}", "${A}", "${MODEL_2}", "qwen2.5", "qwen2.5:72b",
                                   "registry.example.com:5000/team/m:v1", "  qwen2.5  "])
def test_a_lone_placeholder_or_a_model_reference_passes(value):
    assert model_or_placeholder(value, "model_cache_gitops_models") == value


@pytest.mark.parametrize("value", [
    # every class that could reach the rendered Job as other than a name
    "$(id)", "`id`", 'a"b', "a'b", "{{ x }}", "a\nb", "../etc", "", None, 7,
    # a placeholder with anything around it, escaped, with a shell default, or not Flux's form
    "${OLLAMA_MODEL}x", "x${OLLAMA_MODEL}", "${OLLAMA_MODEL}${OLLAMA_QUOTE}", "$${OLLAMA_MODEL}",
    "${OLLAMA_MODEL:-qwen2.5}", "${ollama_model}", "${}", "$OLLAMA_MODEL", "${OLLAMA_MODEL}\n", " ${OLLAMA_MODEL}",
    # a newline at the edge of a part, which a regex '$' lets through and a shell runs as a command
    "\nreboot", "x\n/bin/reboot", "qwen2.5\n:latest", "qwen2.5\n", "qwen2.5\t",
])
def test_everything_else_is_refused_naming_the_variable(value):
    with pytest.raises(NameError_, match=r"^model_cache_gitops_models is .*, neither a model reference nor one "
                                         r"Flux placeholder alone .*: model name"):
        model_or_placeholder(value, "model_cache_gitops_models")


def test_the_model_or_placeholder_filter_raises_an_ansible_error():
    check = ModelOrPlaceholderFilter().filters()["model_or_placeholder"]
    assert check("${OLLAMA_MODEL}", variable="x") == "${OLLAMA_MODEL}"
    with pytest.raises(AnsibleFilterError, match=r"^x is '\$\(id\)', neither a model reference"):
        check("$(id)", variable="x")
