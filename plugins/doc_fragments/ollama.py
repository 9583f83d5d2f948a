# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # How the modules reach an Ollama server: shared by every module of the collection.
    DOCUMENTATION = r"""
options:
  host:
    description:
      - Base URL of the Ollama server API, as seen from the managed host.
      - A path is kept, so a server behind a gateway under a prefix works, for example
        V(http://gateway.example.com:9080/ollama).
      - Proxies come from the environment of the managed host (C(http_proxy), C(https_proxy), C(no_proxy)).
    type: str
    default: http://127.0.0.1:11434
  timeout:
    description:
      - Seconds to wait for the server to accept a connection and to answer a request.
    type: float
    default: 30
  validate_certs:
    description:
      - Verify the server's TLS certificate when O(host) is an C(https) URL.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA certificates that signed the server's (or gateway's) certificate.
    type: path
  headers:
    description:
      - Extra HTTP headers sent with every request.
      - Put a gateway's token in O(api_key), not here - headers are shown in results and verbose output.
    type: dict
    default: {}
  api_key:
    description:
      - Token of a gateway in front of Ollama, sent as an C(Authorization) header, C(Bearer <api_key>),
        with every request.
      - Never shown in results, diffs, warnings or verbose output.
      - If not set, the environment variable E(OLLAMA_API_KEY) is used.
      - Mutually exclusive with an C(Authorization) entry in O(headers).
    type: str
notes:
  - The modules use Ansible's own URL handling and the Python standard library only; nothing needs
    installing on the managed host.
"""
