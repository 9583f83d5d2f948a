# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The free space of the filesystem a directory is (or will be) on."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.module_utils.filesystem_room import FilesystemRoomError, room

DOCUMENTATION = r"""
name: filesystem_room
short_description: The free space of the filesystem that holds a path, from df or the mount facts
version_added: 1.2.0
author: AI Platform team
description:
  - Finds the mount that holds the path (the longest mount point that is a prefix of it, so a directory
    not created yet counts too) and returns its free space, plus the bytes given as already stored there.
  - Prefer the output of C(df -P -B1) to C(ansible_facts.mounts), which leave out filesystems whose device is
    not a path (tmpfs, overlay).
positional: _input
options:
  _input:
    description: The path.
    type: path
    required: true
  mounts:
    description: The standard output of C(df -P -B1), or C(ansible_facts.mounts).
    type: raw
    required: true
  present_bytes:
    description: Bytes already there that the caller would write again (they need no new room).
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: List the filesystems
  ansible.builtin.command: df -P -B1
  register: df
  changed_when: false

- name: The room of the model store
  ansible.builtin.debug:
    msg: "{{ ('/var/lib/ollama/models' | aiplatform.ollama.filesystem_room(mounts=df.stdout)).room }}"
"""

RETURN = r"""
_value:
  description: C(mount), C(device), C(available) and C(room) (available plus O(present_bytes)), in bytes.
  type: dict
"""


def filesystem_room(path, mounts, present_bytes=0):
    try:
        return room(path, mounts, present_bytes)
    except FilesystemRoomError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """Free space of a path's filesystem."""

    def filters(self):
        return {"filesystem_room": filesystem_room}
