# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Ollama service's release plan: install, switch, roll back or nothing."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.aiplatform.ollama.plugins.module_utils.service_release import (
    ServiceReleaseError,
    release_plan,
)

DOCUMENTATION = r"""
name: service_release
short_description: Decide what the Ollama service's install directory needs - install, switch, roll back or nothing
version_added: 1.2.0
author: AI Platform team
description:
  - From the version wanted, the versions the host holds and where its C(current) and C(previous) links
    point, decides whether the release archive is downloaded and unpacked, whether C(current) flips,
    what C(previous) becomes and which older releases are no longer needed.
  - Refuses, naming the variable and the fix, an archive without a sha256, a rollback with nothing to go
    back to and a second archive under an installed version's name.
positional: _input
options:
  _input:
    description: The version wanted (C(ollama_service_version)).
    type: str
    required: true
  rollback:
    description: Go back to the version C(previous) points at.
    type: bool
    default: false
  current:
    description: The version C(current) points at, empty when none.
    type: str
    default: ""
  previous:
    description: The version C(previous) points at, empty when none.
    type: str
    default: ""
  installed:
    description: Each complete version directory and the archive checksum recorded in it.
    type: dict
  archive:
    description: C(url), C(src) and C(checksum) of the release archive.
    type: dict
  remove_obsolete:
    description: List the installed versions no link will point at in C(obsolete), for removal.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Plan an upgrade from 0.18.3
  ansible.builtin.debug:
    msg: >-
      {{ '0.19.0' | aiplatform.ollama.service_release(current='0.18.3', installed={'0.18.3': ''},
           archive={'url': 'https://example.com/ollama-linux-amd64.tgz', 'checksum': 'sha256:' ~ ('0' * 64)}) }}
"""

RETURN = r"""
_value:
  description:
    - The plan - C(version), C(install), C(source), C(location), C(checksum), C(flip), C(previous), C(obsolete)
      (the installed versions neither C(current) nor C(previous) will point at; none on a rollback), C(changed)
      and C(message).
  type: dict
"""


def service_release(version, rollback=False, current="", previous="", installed=None, archive=None,
                    remove_obsolete=True):
    try:
        return release_plan(version, rollback, current or "", previous or "", installed, archive,
                            remove_obsolete=boolean(remove_obsolete))
    except ServiceReleaseError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """The Ollama service's release plan."""

    def filters(self):
        return {"service_release": service_release}
