# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How every file of the store, and a bundle, is replaced: a reader sees the old bytes or the new ones, never
a part, and once the write returns the new ones survive a crash.

The content goes into a temporary file of a name no one else has (mkstemp), is fsynced and made readable by
all (0644, what Ollama and the pods reading the store expect whatever the umask), then renamed over the target
and the target's directory fsynced, since the rename is durable only once the directory entry is. A failure
at any step removes the temporary file. `write_temp` and `commit` are the two halves, for a writer that must
have every file verified before it renames any (a bundle import).

Only the caller knows where a temporary file is safe to leave behind should the machine die: the store keeps
them in its blobs directory under a `-partial` name, which Ollama's start-up prune removes (see ollama_store).
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def fsync_dir(path):
    """Make the entries of a directory durable (a rename in it); a filesystem that refuses is left as it is."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_temp(directory, content, prefix, suffix="", mode=0o644):
    """A new file in `directory` holding `content` (bytes, or a function that writes into the open binary
    file), fsynced, with `mode`: its path, for commit(). On any failure it is removed and the error raised."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        discard(tmp)
        raise
    return tmp


def commit(tmp, path):
    """Rename the complete, fsynced `tmp` over `path` and make the rename durable."""
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


def discard(tmp):
    """Remove a temporary file that will not be committed (gone already is fine)."""
    with contextlib.suppress(OSError):
        os.remove(tmp)


def write_atomically(path, content, prefix, suffix="", tmp_dir=None, mode=0o644):
    """Replace `path` with `content` (as write_temp takes it) through a temporary file in `tmp_dir` (by default
    the directory of `path`; it must be on the same filesystem). Raises OSError, with nothing left behind."""
    tmp = write_temp(tmp_dir or os.path.dirname(path), content, prefix, suffix, mode)
    try:
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise
