# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The exposure score `systemd-analyze security UNIT` reports, read from its table.

systemd (since 240) rates a unit's sandbox from 0 (fully sandboxed) to 10 (fully exposed); the
`--json` output came only with systemd 250 and omits the overall score, so the table is read: its
last line carries the score and each row starting with a cross names a setting that adds exposure.
"""

from __future__ import annotations

import re

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError

_OVERALL = re.compile(r"Overall exposure level for (\S+): ([0-9]+(?:\.[0-9]+)?) (\w+)")
_ROW = re.compile(r"^\s*\u2717\s+(\S+)\s+(.*?)\s+([0-9]+(?:\.[0-9]+)?)\s*$")


class SystemdSecurityError(InputError):
    """Output that is not `systemd-analyze security UNIT`'s."""


def exposure(text):
    """{unit, score, verdict, exposed: [{setting, description, exposure}]} from the command's output."""
    text = str(text or "")
    overall = _OVERALL.search(text)
    if not overall:
        raise SystemdSecurityError(
            "the output of systemd-analyze security has no 'Overall exposure level' line (systemd 240 or later "
            f"prints it): {' '.join(text.split())[:200]!r}"
        )
    exposed = []
    for line in text.splitlines():
        row = _ROW.match(line)
        if row:
            exposed.append({"setting": row.group(1), "description": row.group(2), "exposure": float(row.group(3))})
    return {"unit": overall.group(1), "score": float(overall.group(2)), "verdict": overall.group(3),
            "exposed": exposed}
