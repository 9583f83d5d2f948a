# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How much a directory may grow: the free space of the filesystem that holds it.

The preflight's storage check compares the models, plus room to download the largest again, with a
size; on a host that size is the filesystem's free space plus what the store already holds of those
models (seeding them again writes nothing). The filesystem is the mount point that is the longest
prefix of the path, so a path that does not exist yet is judged where it will be created. The mounts
come from `df -P -B1` on the host: Ansible's mount facts leave out filesystems whose device is not a
path (tmpfs, overlay), which would judge a store on a small tmpfs by its parent's free space.
"""

from __future__ import annotations

import posixpath

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError


class FilesystemRoomError(InputError):
    """Mount facts that do not hold the path's filesystem."""


def parse_df(text):
    """Mount entries ({device, mount, size_total, size_available}) from `df -P -B1` output."""
    mounts = []
    for line in str(text or "").splitlines()[1:]:
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[1].isdigit() and fields[3].isdigit():
            mounts.append({"device": fields[0], "mount": fields[5], "size_total": int(fields[1]),
                           "size_available": int(fields[3])})
    return mounts


def filesystem_of(path, mounts):
    """The mount fact (ansible_facts.mounts entry) of the filesystem that holds `path`."""
    path = posixpath.normpath(str(path or "/"))
    best = None
    for mount in mounts or []:
        point = posixpath.normpath(str(mount.get("mount") or ""))
        inside = point == "/" or path == point or path.startswith(point + "/")
        if inside and (best is None or len(point) > len(posixpath.normpath(best["mount"]))):
            best = mount
    if best is None or best.get("size_available") is None:
        raise FilesystemRoomError(f"no mount holds {path} (df -P -B1 lists none), so its free space is not known")
    return best


def room(path, mounts, present_bytes=0):
    """{mount, device, available, room}: `room` is the free space plus `present_bytes` already stored there.

    `mounts` is `df -P -B1` output or a list of mount entries (as Ansible's mount facts have them).
    """
    mount = filesystem_of(path, parse_df(mounts) if isinstance(mounts, str) else mounts)
    available = int(mount["size_available"])
    return {"mount": mount.get("mount"), "device": mount.get("device"), "available": available,
            "room": available + max(0, int(present_bytes or 0))}
