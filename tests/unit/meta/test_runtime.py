"""meta/runtime.yml's action group `ollama` (module_defaults: group/aiplatform.ollama.ollama) lists exactly the
modules that take the shared Ollama server options, OLLAMA_COMMON_ARGS: a module missing from it ignores
the host and token a user set once for the group; a module in it without them fails on options it does
not know. The modules' sources are read with ast, as they are written, without running them."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import yaml

from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import OLLAMA_COMMON_ARGS

ROOT = Path(__file__).resolve().parents[3]
SHARED = "OLLAMA_COMMON_ARGS"


def uses_shared_args(source: str) -> bool:
    """The module imports OLLAMA_COMMON_ARGS from module_utils.ollama_api and reads it (beyond the import)."""
    tree = ast.parse(source)
    imported = any(isinstance(node, ast.ImportFrom) and (node.module or "").endswith("module_utils.ollama_api")
                   and any(alias.name == SHARED for alias in node.names) for node in ast.walk(tree))
    read = any(isinstance(node, ast.Name) and node.id == SHARED and isinstance(node.ctx, ast.Load)
               for node in ast.walk(tree))
    return imported and read


def literal_options(source: str) -> set[str]:
    """Option names a module writes out itself: keywords of dict(...) calls and keys of {...} literals."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            names |= {kw.arg for kw in node.keywords if kw.arg}
        elif isinstance(node, ast.Dict):
            names |= {key.value for key in node.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)}
    return names


def modules_with_shared_args(root: Path) -> set[str]:
    return {path.stem for path in (root / "plugins" / "modules").glob("*.py")
            if path.stem != "__init__" and uses_shared_args(path.read_text())}


def action_group(root: Path) -> set[str]:
    group = yaml.safe_load((root / "meta" / "runtime.yml").read_text())["action_groups"]["ollama"]
    return {name.rsplit(".", 1)[-1] for name in group if isinstance(name, str)}


def test_the_ollama_action_group_is_exactly_the_modules_taking_the_shared_server_args():
    users = modules_with_shared_args(ROOT)
    assert len(users) >= 2, users  # the group's purpose: one server setting for several modules
    assert action_group(ROOT) == users, (
        f"only in meta/runtime.yml: {sorted(action_group(ROOT) - users)}; "
        f"using {SHARED} but not in the group: {sorted(users - action_group(ROOT))}")


def test_no_module_copies_the_shared_server_args_instead_of_using_them():
    """A copy of host and api_key would escape the group check above and drift from the doc fragment."""
    server_options = {"host", "api_key"}
    assert server_options <= set(OLLAMA_COMMON_ARGS)
    copies = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py")
                    if server_options <= literal_options(path.read_text()) and not uses_shared_args(path.read_text()))
    assert copies == [], f"use {SHARED} from module_utils/ollama_api.py in {copies}"


def test_the_check_sees_a_module_left_out_of_the_group(tmp_path):
    """The comparison above can fail: a copy of the collection whose group lacks one module differs."""
    shutil.copytree(ROOT / "plugins" / "modules", tmp_path / "plugins" / "modules")
    (tmp_path / "meta").mkdir()
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    dropped = runtime["action_groups"]["ollama"].pop()
    (tmp_path / "meta" / "runtime.yml").write_text(yaml.safe_dump(runtime))
    assert modules_with_shared_args(tmp_path) - action_group(tmp_path) == {dropped.rsplit(".", 1)[-1]}
