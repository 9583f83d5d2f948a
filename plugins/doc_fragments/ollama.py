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
      - The values of headers that carry a credential are hidden wherever the task's output would show
        them (the C(invocation) of verbose output, results, messages, warnings and the managed host's log
        of the invocation), as Ansible hides a C(no_log) option's - a value shown alone as
        C(VALUE_SPECIFIED_IN_NO_LOG_PARAMETER), within a longer text as C(********). The other headers
        are shown as given.
      - A header carries a credential when its name, in any case and split into words at every character
        that is not a letter or digit, has a word that is C(authorization), C(authentication), C(auth),
        C(cookie), C(token), C(key), C(secret), C(password), C(passwd), C(credential), C(credentials),
        C(session), C(signature) or C(jwt), or starts with C(auth) or C(session), or ends with C(token),
        C(key), C(secret), C(password) or C(cookie). So C(Authorization), C(Proxy-Authorization),
        C(Cookie), C(X-Api-Key), C(Api-Key), C(apikey), C(X-Auth-Token), C(PRIVATE-TOKEN) and
        C(Ocp-Apim-Subscription-Key) are masked, C(Accept), C(X-Request-Id) and C(OpenAI-Organization) not.
      - As with any C(no_log) value, the same text is masked wherever else it appears in the output;
        for C(Bearer <token>) and other C(<scheme> <credentials>) values, the credentials alone too.
      - A value must be a string (or an integer) of Latin-1 characters on one line.
      - Still prefer O(api_key) for a gateway's token, which is hidden whatever its name and can come
        from the environment.
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
