"""The served-model rule, the name every role derives the same way."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.served_model import served_model


@pytest.mark.parametrize("model,limit,alignment,expected", [
    ("qwen2.5:72b", "2000m", "auto", "qwen2.5:72b-t2"),
    ("qwen2.5:72b", "1000m", "seed", "qwen2.5:72b-t1"),
    ("qwen2.5", "4", "chart_create", "qwen2.5:latest-t4"),
    ("myteam/model:v1", "2", "auto", "myteam/model:v1-t2"),
    ("registry.example.com:5000/library/tiny:latest", "2000m", "auto",
     "registry.example.com:5000/library/tiny:latest-t2"),
    ("qwen2.5:72b", "2000m", "off", "qwen2.5:72b"),
    ("qwen2.5", "2000m", "off", "qwen2.5"),  # off: the name as deployed
])
def test_served_model(model, limit, alignment, expected):
    assert served_model(model, limit, alignment) == expected


@pytest.mark.parametrize("model,limit,alignment,message", [
    ("qwen2.5:72b", "2000m", "sometimes", "thread alignment 'sometimes' is not one of"),
    ("qwen 2.5", "2000m", "auto", "invalid model"),
    ("$(reboot)", "2000m", "off", "invalid model"),
    ("qwen2.5:72b", "two", "auto", "'two' is not a Kubernetes CPU quantity"),
    ("m:" + "t" * 79, "2", "auto", "invalid tag"),  # the suffix would pass Ollama's 80-character tag limit
])
def test_served_model_refuses_bad_input(model, limit, alignment, message):
    with pytest.raises(AnsibleFilterError, match="served_model: .*" + message):
        served_model(model, limit, alignment)
