"""Rewriting model bundles into hostile ones: the members of a bundle, and a tar written from members
as given (links, odd names and wrong sizes included), for the import tests to refuse."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def members_of(path: Path) -> list:
    """[(TarInfo, bytes or None)] of a bundle, for rewriting it."""
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else None) for m in tar.getmembers()]


def write_tar(path: Path, members: list) -> Path:
    """A tar of (TarInfo or name, bytes or None) members, each written as it is."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info = tarfile.TarInfo(info) if isinstance(info, str) else info
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path
