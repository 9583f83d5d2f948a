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

    # The connection options of a module whose managed host talks to the registry itself
    # (ollama_store_model, ollama_model_info, ollama_bundle): aiplatform.ollama.ollama_registry.tls.
    # Not part of DOCUMENTATION because ollama_model has these names already, from the ollama
    # fragment, for its Ollama server.
    TLS = r"""
options:
  validate_certs:
    description:
      - Verify the TLS certificates of the registry, of its token service and of the hosts it redirects
        blob downloads to (a CDN).
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA certificates to trust, instead of the managed host's system CA store, for the
        registry, its token service and the hosts it redirects blob downloads to (a private registry's CA).
      - Only the certificates in this file are trusted then, so a private registry that redirects blob
        downloads to a public CDN needs a file holding both CAs.
    type: path
  timeout:
    description:
      - Seconds to wait for the registry (or its token service, or a blob host) to accept a connection,
        and then for each read or write.
    type: float
    default: 60
"""
