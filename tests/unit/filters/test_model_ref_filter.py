"""The model_ref filter: every role validates model names with the modules' own parser, and a name that
could reach a script or a path as anything but data is refused naming the variable."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.model_ref import model_ref


def test_parts_and_forms():
    assert model_ref("qwen2.5") == {"host": "registry.ollama.ai", "namespace": "library", "model": "qwen2.5",
                                    "tag": "latest", "full": "registry.ollama.ai/library/qwen2.5:latest",
                                    "short": "qwen2.5:latest"}
    assert model_ref("registry.example.com:5000/team/m:v1")["short"] == "registry.example.com:5000/team/m:v1"


@pytest.mark.parametrize("name", [
    "$(reboot)", "`id`", "qwen'2.5", 'qwen"2.5', "{{ lookup('pipe', 'id') }}", "${HOME}", "qwen\n2.5",
    "../../etc/passwd", "qwen2.5;rm -rf /", "qwen 2.5", "", "a/b/c/d",
])
def test_refuses_what_could_inject_naming_the_variable(name):
    with pytest.raises(AnsibleFilterError, match=r"^model_cache_models: model name"):
        model_ref(name, variable="model_cache_models")
