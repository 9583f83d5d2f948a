"""A directory as the tests compare it: what "unchanged" means for a store, a bundle target or a tree."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree(root: Path) -> list[tuple]:
    """Every entry under root, in order: (path relative to root, "dir"), (path, "link", its target) or
    (path, "file", sha256 of its bytes); empty when root does not exist."""
    if not root.exists():
        return []
    out = []
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out.append((rel, "link", os.readlink(path)))
        elif path.is_dir():
            out.append((rel, "dir"))
        else:
            out.append((rel, "file", hashlib.sha256(path.read_bytes()).hexdigest()))
    return out
