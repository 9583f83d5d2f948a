# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Processes writing into a store without its lock: an Ollama server's pull in progress.

Ollama does not take the collection's store lock. Its pull writes each blob as `<blob>-partial`, renames it
into place when complete and writes the manifest after the last one, so until then the pull's complete blobs
are referenced by no manifest, and a prune would take them from under it. The pull holds its partial files
open while it downloads: that is what is looked for here, in /proc, which shows every process to root and
its own to any other user. A pull that starts after the look is not seen; the prune's message says so.
"""

from __future__ import annotations

import os

_PARTIAL = "-partial"


def partial_writers(blobs_dir, proc="/proc"):
    """[(pid, command, path)] of the other processes holding a partial download in `blobs_dir` open."""
    prefix = os.path.realpath(blobs_dir) + os.sep
    found = []
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit() and int(name) != os.getpid()]
    except OSError:
        return found  # no /proc: nothing can be seen, as for another user's processes
    for pid in pids:
        path = _partial_open(os.path.join(proc, pid, "fd"), prefix)
        if path:
            found.append((int(pid), _command(os.path.join(proc, pid, "comm")), path))
    return found


def _partial_open(fd_dir, prefix):
    try:
        fds = os.listdir(fd_dir)
    except OSError:  # gone, or another user's
        return None
    for fd in fds:
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(prefix) and _PARTIAL in os.path.basename(target):
            return target
    return None


def _command(comm_path):
    try:
        with open(comm_path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def describe(writers):
    """The writers for a message: `ollama (pid 123) writes .../sha256-...-partial`."""
    return "; ".join(f"{command} (pid {pid}) writes {path}" for pid, command, path in writers)
