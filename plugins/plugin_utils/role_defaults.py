# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A role's own defaults, read from its defaults/main.yml in this collection: the one source a role
reading another role's variable falls back to, instead of a copy of the value that could drift."""

from __future__ import annotations

import os

import yaml

# the collection's root: plugins/plugin_utils/ is two levels below it, in a work tree and installed alike
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RoleDefaultError(Exception):
    pass


def _roles(root):
    return sorted(name for name in os.listdir(os.path.join(root, "roles"))
                  if os.path.isfile(os.path.join(root, "roles", name, "defaults", "main.yml")))


def owning_role(variable, root=COLLECTION_ROOT):
    """The role a variable belongs to: variables are prefixed with their role's name (the longest
    matching name wins, so `ollama_flux_x` is ollama_flux's even if a role `ollama` existed)."""
    owners = [role for role in _roles(root) if variable.startswith(role + "_")]
    if not owners:
        raise RoleDefaultError(f"{variable} does not start with the name of one of this collection's roles "
                               f"({', '.join(_roles(root))})")
    return max(owners, key=len)


def role_defaults(role, root=COLLECTION_ROOT):
    """The variables of roles/<role>/defaults/main.yml, as written there."""
    with open(os.path.join(root, "roles", role, "defaults", "main.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def role_default(variable, root=COLLECTION_ROOT):
    """The default the owning role gives `variable`; a variable it does not define is refused."""
    defaults = role_defaults(owning_role(variable, root), root)
    if variable not in defaults:
        raise RoleDefaultError(f"{variable} is not a variable of the {owning_role(variable, root)} role "
                               "(not in its defaults/main.yml)")
    value = defaults[variable]
    if "{{" in str(value):
        # a template would reach the reader untemplated: such a default is read where its role computes it
        raise RoleDefaultError(f"{variable}'s default is a template, which only its own role evaluates")
    return value
