"""model_cache tests: the module runs in-process through the runner of the ollama_modules suite."""

from __future__ import annotations

import pytest

from tests.integration.ollama_modules.conftest import run_module


@pytest.fixture(scope="session")
def seed_module():
    """ollama_store_model in-process: seed_module(args, check_mode=False) -> result dict."""
    return lambda args, check_mode=False: run_module("ollama_store_model", args, check_mode=check_mode)


# the Kubernetes and Flux schema checks of the ollama_flux suite, as fixtures here too
from tests.integration.ollama_flux.conftest import (  # noqa: E402, F401  pylint: disable=unused-import
    flux_schemas,
    validate_flux,
    validate_k8s,
)
