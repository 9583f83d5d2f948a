"""The line ollama_store_model's `summary` gives for each model: what the store holds and what was done."""

from __future__ import annotations

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef
from ansible_collections.aiplatform.ollama.plugins.module_utils.seed_model import ModelSeed

DIGEST = "sha256:" + "ab" * 32


def seed(action, after, served=None, served_changed=False):
    model = ModelSeed(ModelRef.parse("qwen2.5:0.5b"), "/store/manifests/x",
                      ModelRef.parse(served) if served else None)
    model.action, model.after = action, after
    if served:
        model.served.changed = served_changed
    return model


@pytest.mark.parametrize(("check_mode", "said"), [(False, "seeded"), (True, "would be seeded")])
def test_a_seeded_model_names_its_digest_its_size_and_what_was_done(check_mode, said):
    line = seed("seeded", {"digest": DIGEST, "size": 397_599_744}).summary(check_mode)
    assert line == f"qwen2.5:0.5b: {DIGEST} (379.2 MiB), {said}"


def test_a_complete_model_is_already_complete_and_its_served_model_in_place():
    line = seed("none", {"digest": DIGEST, "size": 1024}, served="qwen2.5:0.5b-t4").summary(False)
    assert line == f"qwen2.5:0.5b: {DIGEST} (1.0 KiB), already complete; served as qwen2.5:0.5b-t4, in place"


@pytest.mark.parametrize(("check_mode", "said"), [(False, "written"), (True, "would be written")])
def test_a_served_model_written_says_so(check_mode, said):
    line = seed("seeded", {"digest": DIGEST, "size": 1}, served="qwen2.5:0.5b-t2",
                served_changed=True).summary(check_mode)
    assert line.endswith(f"; served as qwen2.5:0.5b-t2, {said}")


def test_a_removed_model_and_an_absent_one_hold_nothing():
    assert seed("removed", None).summary(False) == "qwen2.5:0.5b: removed"
    assert seed("removed", None).summary(True) == "qwen2.5:0.5b: would be removed"
    assert seed("none", None).summary(False) == "qwen2.5:0.5b: not in the store"
