"""The store helpers are imported from the work tree, as the ollama_modules unit tests do."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.playbook import link_work_tree

try:
    import ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store  # noqa: F401  pylint: disable=unused-import
except ImportError:
    import sys

    # needed at import time: the test module imports the plugin when pytest collects it
    sys.path.insert(0, str(link_work_tree(Path(tempfile.mkdtemp(prefix="model_cache_unit_")))))
