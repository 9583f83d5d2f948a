# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""YAML that reads line by line in a pull request: literal blocks for multi-line strings."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.plugin_utils.review_yaml import ReviewYamlError, dump_review_yaml

DOCUMENTATION = r"""
name: to_review_yaml
short_description: Serialize data as YAML for review, multi-line strings as literal blocks
version_added: 1.0.0
author: AI Platform team
description:
  - Serializes data as block-style YAML like C(to_nice_yaml(indent=2)), for files a person reviews
    line by line in a pull request, such as the objects of a GitOps tree.
  - Every multi-line string (a shell script, a Modelfile template) is written as a literal block,
    C(|), C(|-) or C(|+) as its trailing newlines require, one line of the string per line of the
    file. A string a literal block cannot hold exactly (trailing spaces on a line, tabs, carriage
    returns, other control characters) is double-quoted instead; the YAML always loads back to the
    very same data.
  - A string that is only a Flux placeholder, such as C(${OLLAMA_MODEL}), is double-quoted, so the
    value Flux substitutes into the text stays a string even when it looks like a number.
  - Lines are never wrapped, keys keep the order of the data unless O(sort_keys) is set, and no
    anchors or aliases are written, so the same data always gives the same bytes.
  - Ansible's own string and container types (tagged, lazily templated) are written as the plain
    str, dict and list they stand for. A value that is not JSON-like (a module, an object) is an
    error that names where it is.
positional: _input
options:
  _input:
    description: The data, a mapping, a list or a scalar.
    type: raw
    required: true
  sort_keys:
    description:
      - Sort the keys of every mapping, as C(to_nice_yaml) does.
      - The default keeps the order of the data, so a Kubernetes object reads as apiVersion, kind,
        metadata, spec, and a container starts with its name.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Render a Kubernetes object into a GitOps tree
  ansible.builtin.copy:
    content: "{{ object | aiplatform.ollama.to_review_yaml }}"
    dest: apps/base/ollama/configmap.yaml
    mode: "0644"

# With script: "#!/bin/sh\nexec ollama serve\n" this shows
#   data:
#     run.sh: |
#       #!/bin/sh
#       exec ollama serve
#   version: "${OLLAMA_VERSION}"
- name: Show a mapping with a script in it
  ansible.builtin.debug:
    msg: "{{ {'data': {'run.sh': script}, 'version': '${OLLAMA_VERSION}'} | aiplatform.ollama.to_review_yaml }}"

- name: Keys sorted, as to_nice_yaml writes them
  ansible.builtin.debug:
    msg: "{{ object | aiplatform.ollama.to_review_yaml(sort_keys=true) }}"
"""

RETURN = r"""
_value:
  description: The YAML document, ending with a newline.
  type: string
"""


def to_review_yaml(data, sort_keys=False):
    """data as review-friendly block YAML (see plugins/plugin_utils/review_yaml.py)."""
    if not isinstance(sort_keys, bool):
        raise AnsibleFilterError(f"to_review_yaml: sort_keys must be a boolean, not {sort_keys!r}")
    try:
        return dump_review_yaml(data, sort_keys=sort_keys)
    except ReviewYamlError as exc:
        raise AnsibleFilterError(f"to_review_yaml: {exc}") from exc


class FilterModule:
    """Review-friendly YAML."""

    def filters(self):
        return {"to_review_yaml": to_review_yaml}
