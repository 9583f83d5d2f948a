"""deployment_served_model: the model name a verification or diagnosis probes, the one the deployment published
or else the one served_model derives from its settings (ollama_flux's defaults where unset)."""

from __future__ import annotations

import pytest

from ansible_collections.aiplatform.ollama.plugins.filter.deployment_served_model import deployment_served_model


@pytest.mark.parametrize(("published", "model", "cpu_limit", "alignment", "expected"), [
    ("qwen2.5:72b-t2", "qwen2.5:72b", "4", "auto", "qwen2.5:72b-t2"),  # the deployment's own name wins
    (None, "qwen2.5:72b", "2000m", "auto", "qwen2.5:72b-t2"),
    (None, "qwen2.5:72b", None, None, "qwen2.5:72b-t1"),  # ollama_flux's defaults: 1000m, auto
    (None, "qwen2.5:72b", "2", "off", "qwen2.5:72b"),
    (None, None, "2", "auto", ""),  # no model named: the role stops and says so
])
def test_deployment_served_model(published, model, cpu_limit, alignment, expected):
    assert deployment_served_model(published, model=model, cpu_limit=cpu_limit, alignment=alignment) == expected


def test_deployment_served_model_refuses_a_bad_alignment():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="deployment_served_model: thread alignment 'never'"):
        deployment_served_model(None, model="qwen2.5:72b", cpu_limit="2", alignment="never")
