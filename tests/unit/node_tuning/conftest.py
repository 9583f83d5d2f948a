# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recorded /proc and /sys trees of several CPU families."""

from __future__ import annotations

import os

import pytest

SAMPLES = os.path.join(os.path.dirname(__file__), "samples")


@pytest.fixture
def samples():
    return SAMPLES
