# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Prints the progress of a long seed or verification of aiplatform.ollama.ollama_store_model (see
plugin_utils/progress_action.py)."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.plugin_utils.progress_action import ProgressAction


class ActionModule(ProgressAction):
    progress_verb = "seeding"

    def run(self, tmp=None, task_vars=None):
        # state=verified spends its time re-hashing; its progress lines say so
        if self._task.args.get("state") == "verified":
            self.progress_verb = "verifying"
        return super().run(tmp, task_vars)
