# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The model name clients are served: the one rule the deployment, inference_check and diagnose share.

With thread alignment on, the deployment serves a model derived from the base with num_thread set to
the whole CPUs of the limit (`qwen2.5:72b` at 2000m is `qwen2.5:72b-t2`); with alignment `off` the
base model itself. A role that verifies or diagnoses the deployment names the same model: the one the
deployment published when it ran in this play, else the one its inputs derive, else none.
"""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError
from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_quantity import QuantityError, num_thread
from ansible_collections.aiplatform.ollama.plugins.module_utils.model_ref import ModelRef, ModelRefError, served_name

ALIGNMENTS = ("auto", "seed", "chart_create", "off")


class ServedModelError(CollectionError):
    """`kind` is invalid_input: a bad model name, CPU limit or alignment."""

    default_kind = "invalid_input"


def served_model(model, cpu_limit, alignment="auto"):
    """The name clients ask for, for the deployment's model, CPU limit and thread alignment."""
    if alignment not in ALIGNMENTS:
        raise ServedModelError(f"thread alignment {alignment!r} is not one of {', '.join(ALIGNMENTS)}")
    try:
        if alignment == "off":
            ModelRef.parse(model)  # validated all the same: a bad name fails here, not at the probe
            return model
        return served_name(model, num_thread(cpu_limit))
    except (ModelRefError, QuantityError) as exc:
        raise ServedModelError(str(exc)) from exc


def deployment_served_model(published, model, cpu_limit, alignment):
    """The served model a role after (or without) the deployment probes: `published` (the name the
    deployment set in this play), else the one `model`, `cpu_limit` and `alignment` derive, else "" when
    no model is named, so the role can stop and say so rather than guess one. None means "not set"."""
    if published is not None:
        return published
    if model is None:
        return ""
    return served_model(model, cpu_limit, alignment)
