# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules' documentation as ansible-doc assembles it: examples that parse and follow the
fragments' advice, attributes written once in the attributes fragment with each module's own part."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from ansible.utils.plugin_docs import add_fragments

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
PREFIX = "aiplatform.ollama."


class _Fragments:
    """The part of Ansible's fragment loader add_fragments uses, over this collection's doc_fragments."""

    def get(self, name):
        if not name.startswith(PREFIX):
            return None
        try:
            found = importlib.import_module("ansible_collections.aiplatform.ollama.plugins.doc_fragments."
                                            + name[len(PREFIX):])
        except ImportError:
            return None  # add_fragments retries with the last component as a sub-fragment
        return type("ModuleDocFragment", (found.ModuleDocFragment,), {"ansible_name": name})


def _module(name):
    return importlib.import_module(f"ansible_collections.aiplatform.ollama.plugins.modules.{name}")


def _raw_doc(name):
    return yaml.safe_load(_module(name).DOCUMENTATION)


def _doc(name):
    doc = _raw_doc(name)
    add_fragments(doc, str(ROOT / "plugins" / "modules" / f"{name}.py"), _Fragments(), is_module=True)
    return doc


def _tasks(name):
    return yaml.safe_load(_module(name).EXAMPLES)


@pytest.mark.parametrize("name", MODULES)
def test_examples_are_named_tasks(name):
    tasks = _tasks(name)
    assert isinstance(tasks, list) and tasks, name
    assert all(isinstance(task, dict) and task.get("name") for task in tasks), name
    assert any(f"aiplatform.ollama.{name}" in task for task in tasks), f"no example of {name} runs it"


@pytest.mark.parametrize("name", MODULES)
def test_no_example_puts_a_token_in_headers(name):
    # the ollama fragment sends a gateway's token as api_key, hidden whatever it is called; headers mask only
    # the values of credential-named entries (module_utils/header_secrets.py)
    for task in _tasks(name):
        for args in task.values():
            if isinstance(args, dict) and isinstance(args.get("headers"), dict):
                assert "authorization" not in (key.lower() for key in args["headers"]), task["name"]


@pytest.mark.parametrize("name", MODULES)
def test_attributes_come_from_the_fragment_with_the_modules_own_support(name):
    raw = _raw_doc(name)
    assert f"{PREFIX}attributes" in raw["extends_documentation_fragment"], name
    for attribute in ("check_mode", "diff_mode", "platform"):
        own = raw["attributes"][attribute]
        # each module says how far it supports the attribute, and keeps the generic meaning to the fragment
        assert own["support"] in ("full", "partial", "none", "N/A"), (name, attribute)
        assert "description" not in own, (name, attribute)
        assert own.get("details"), (name, attribute)
    merged = _doc(name)["attributes"]
    for attribute, own in raw["attributes"].items():
        assert merged[attribute]["description"], (name, attribute)
        assert merged[attribute]["support"] == own["support"], (name, attribute)
        assert merged[attribute]["details"] == own["details"], (name, attribute)
    assert merged["platform"]["platforms"]


@pytest.mark.parametrize("name", ["ollama_store_model", "ollama_model_info", "ollama_bundle"])
def test_modules_that_reach_the_registry_themselves_share_its_tls_options(name):
    raw = _raw_doc(name)
    assert f"{PREFIX}ollama_registry.tls" in raw["extends_documentation_fragment"], name
    assert not {"validate_certs", "ca_path", "timeout"} & set(raw["options"]), name
    options = _doc(name)["options"]
    assert options["timeout"]["default"] == 60 and options["validate_certs"]["default"] is True
    assert "registry" in " ".join(options["ca_path"]["description"])


def test_ollama_model_says_where_its_registry_options_differ():
    # the server pulls: insecure and the credentials mean less there than where the managed host downloads
    options = _doc("ollama_model")["options"]
    insecure = " ".join(options["insecure"]["description"])
    assert "not to the server's pull" in insecure and "trusted by the server" in insecure
    username = " ".join(options["registry_username"]["description"])
    assert "never gets O(registry_username)" in username
    # the server's TLS options from the ollama fragment, not the registry's
    assert "O(host)" in " ".join(options["validate_certs"]["description"])
    assert options["timeout"]["default"] == 30
