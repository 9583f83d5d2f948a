# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One safe_names check as a Jinja filter: its refusal becomes the AnsibleFilterError a task shows."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.safe_names import NameError_


def name_filter(check):
    """`check(value, variable)` as a filter taking `variable=` (the variable named in the refusal)."""

    def refuse_or_pass(value, variable=""):
        try:
            return check(value, variable)
        except NameError_ as exc:
            raise AnsibleFilterError(str(exc)) from exc

    return refuse_or_pass
