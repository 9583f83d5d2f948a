"""Model references are normalised once, with the Ollama server's own character rules.

The model_ref filter (the last tests): every role validates model names with the modules' own parser, and a name that
could reach a script or a path as anything but data is refused naming the variable."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.model_ref import model_ref
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, ModelRefError, normalize


@pytest.mark.parametrize(
    "name, full, short",
    [
        ("qwen2.5", "registry.ollama.ai/library/qwen2.5:latest", "qwen2.5:latest"),
        ("qwen2.5:72b", "registry.ollama.ai/library/qwen2.5:72b", "qwen2.5:72b"),
        ("myteam/model:v1", "registry.ollama.ai/myteam/model:v1", "myteam/model:v1"),
        ("127.0.0.1:5000/library/tiny:latest", "127.0.0.1:5000/library/tiny:latest",
         "127.0.0.1:5000/library/tiny:latest"),
        ("Registry.Example.com:5000/ns/m", "registry.example.com:5000/ns/m:latest",
         "registry.example.com:5000/ns/m:latest"),
        ("registry.ollama.ai/library/llama3.2:3b-q8_0", "registry.ollama.ai/library/llama3.2:3b-q8_0",
         "llama3.2:3b-q8_0"),
        ("  qwen2.5  ", "registry.ollama.ai/library/qwen2.5:latest", "qwen2.5:latest"),
    ],
)
def test_normalise(name, full, short):
    ref = ModelRef.parse(name)
    assert ref.full == full == normalize(name)
    assert ref.short == short
    assert ref.matches(short) and ref.matches(full)


def test_repository_and_registry_url():
    ref = ModelRef.parse("127.0.0.1:5000/itest/tiny:v1")
    assert ref.repository == "itest/tiny"
    assert ref.registry_url(insecure=True) == "http://127.0.0.1:5000"
    assert ModelRef.parse("qwen2.5").registry_url() == "https://registry.ollama.ai"


def test_names_compare_without_case():
    assert ModelRef.parse("Qwen2.5:72B").matches("qwen2.5:72b")
    assert not ModelRef.parse("qwen2.5:72b").matches("qwen2.5:7b")
    assert not ModelRef.parse("qwen2.5").matches("../nonsense")


@pytest.mark.parametrize(
    "name, says",
    [
        ("", "model name is empty"),
        ("   ", "model name is empty"),
        (None, "model name is empty"),
        ("../etc", "invalid namespace '..'"),
        ("../../etc/passwd", "4 path segments"),
        ("/etc/passwd", "invalid host ''"),
        ("a/b/c/d", "4 path segments"),
        ("qwen2.5:", "invalid tag ''"),
        ("qwen 2.5", "invalid model 'qwen 2.5'"),
        ("-model", "invalid model '-model'"),
        ("team.name/model", "invalid namespace 'team.name'"),
        ("model:tag/x", "invalid namespace 'model:tag'"),
        ("https://registry.example.com/ns/m:t", "contains a URL scheme"),
        ("qwen2.5@sha256:abc", "pins a digest"),
        ("m" * 81, "invalid model"),
        ("qwen2.5:" + "t" * 81, "invalid tag"),
    ],
)
def test_invalid_names_say_which_part_and_how(name, says):
    with pytest.raises(ModelRefError) as err:
        ModelRef.parse(name)
    assert says in str(err.value)
    assert "e.g." in str(err.value) or "insecure" in str(err.value) or "tag" in str(err.value)


# the model_ref filter


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
