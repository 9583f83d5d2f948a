# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The registry options (module_utils/ollama_registry.py REGISTRY_ARGS) and where their credentials may
    # go: for every module that talks to a model registry from the managed host.
    DOCUMENTATION = r"""
options:
  insecure:
    description:
      - Talk plain HTTP to the registry (Ollama's C(--insecure)). This does not disable TLS
        verification; see O(validate_certs) and O(ca_path) for that.
      - Also lets O(registry_password) go to a plain-HTTP token service. Without it, a registry whose
        challenge names an C(http://) token service makes the task fail, naming that URL, and the
        password is not sent.
    type: bool
    default: false
  registry_username:
    description:
      - User for the registry (basic auth, or to obtain a bearer token from the token service the
        registry's challenge names).
    type: str
  registry_password:
    description:
      - Password or token for O(registry_username).
      - Sent only to the registry and to the token service its challenge names; over plain HTTP only
        with O(insecure=true).
      - Neither it nor the bearer token obtained with it goes along a redirect to another origin
        (scheme, host name or port), such as a blob CDN; a redirect on the registry's own origin keeps
        them. A host a redirect leads to that asks for credentials of its own is not answered.
      - Never shown in results, warnings, messages or verbose output.
    type: str
"""
