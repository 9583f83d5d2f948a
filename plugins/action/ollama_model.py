# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Prints the progress of a long pull of aiplatform.ollama.ollama_model (see plugin_utils/progress_action.py)."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.plugin_utils.progress_action import ProgressAction


class ActionModule(ProgressAction):
    progress_verb = "pulling"
