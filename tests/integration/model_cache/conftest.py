"""model_cache tests: ollama_store_model runs in-process against the real registry."""

from __future__ import annotations

import pytest

from tests.module_runner import run_module


@pytest.fixture(scope="session")
def seed_module():
    """ollama_store_model in-process: seed_module(args, check_mode=False) -> result dict."""
    return lambda args, check_mode=False: run_module("ollama_store_model", args, check_mode=check_mode)
