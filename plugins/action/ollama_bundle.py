# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Prints the progress of aiplatform.ollama.ollama_bundle writing, importing or pushing a bundle (see
plugin_utils/progress_action.py)."""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.plugin_utils.progress_action import ProgressAction

# the module's states, each named by what the task spends its time on
_VERBS = {"exported": "exporting", "imported": "importing", "pushed": "pushing"}


class ActionModule(ProgressAction):
    progress_verb = "importing"

    def run(self, tmp=None, task_vars=None):
        # an unknown state keeps the default verb; the module itself refuses it
        self.progress_verb = _VERBS.get(self._task.args.get("state"), self.progress_verb)
        return super().run(tmp, task_vars)
