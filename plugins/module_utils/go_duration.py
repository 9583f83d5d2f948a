# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Go/Flux durations (30m, 1h30m, 90s, 500ms) as seconds: how long Flux may take, for the waits."""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def duration_seconds(value) -> float:
    """Seconds of a Go duration string; ValueError naming the value when it is not one."""
    text = str(value).strip()
    parts = _PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"{value!r} is not a Go duration; write e.g. 90s, 10m, 30m or 1h30m")
    return sum(float(number) * _UNIT[unit] for number, unit in parts)
