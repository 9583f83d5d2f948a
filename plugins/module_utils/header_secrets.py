# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which entries of a module's `headers` option carry credentials, and keeping their values out of its output.

`headers` is not no_log as a whole: its ordinary entries (Accept, a tenant or trace header) stay visible in
`invocation`, which is how a user checks what was sent. The values of the entries that carry a credential
become no_log values of the module instead, so that Ansible itself replaces them with ******** wherever the
module's output holds them: `invocation` (shown at -vvv), results, messages, warnings, and the line logging
the invocation to syslog or the journal of the managed host.

A header carries a credential when its name, in any case and split into words at every character that is
not a letter or digit, has a word that

- is one of CREDENTIAL_WORDS (Authorization, Proxy-Authorization, Cookie, X-Api-Key, X-Auth-Token,
  PRIVATE-TOKEN, X-Vault-Token, X-Amz-Security-Token, Ocp-Apim-Subscription-Key, X-Session-Id, ...),
- starts with `auth` or `session` (X-Authn-User, SessionId), or
- ends with `token`, `key`, `secret`, `password` or `cookie` (Set-Cookie, apikey, X-AccessToken, x_apikey).

A header taken for a credential that is none (Idempotency-Key) only costs a masked value in the output;
one missed would leak, hence words rather than a list of names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.common.validation import check_type_dict

CREDENTIAL_WORDS = frozenset((
    "authorization", "authentication", "auth", "cookie", "token", "key", "secret", "password", "passwd",
    "credential", "credentials", "session", "signature", "jwt",
))
_PREFIXES = ("auth", "session")
_SUFFIXES = ("token", "key", "secret", "password", "cookie")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")


def is_credential_header(name):
    """True when the header `name` (any case) carries a credential, by the rules of this file's docstring."""
    words = _WORD_SPLIT.split(str(name).lower())
    return any(
        word in CREDENTIAL_WORDS or word.startswith(_PREFIXES) or word.endswith(_SUFFIXES) for word in words if word
    )


def _strings(value):
    """The non-empty texts in a header's value (nested ones too), as Ansible collects a no_log option's."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _strings(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def credential_values(headers):
    """The texts to mask for `headers` (a dict, or the `k=v` / JSON text a dict option accepts): each
    credential-bearing header's value, and the credential after its scheme (`s3cr3t` of `Bearer s3cr3t`),
    which a message could quote alone. Headers that cannot be read as a dict are masked whole."""
    if not headers:
        return set()
    if not isinstance(headers, Mapping):
        try:
            headers = check_type_dict(headers)
        except (TypeError, ValueError):
            return set(_strings(headers))  # refused by the option's validation: nothing of it is shown
    found = set()
    for name, value in headers.items():
        if not is_credential_header(name):
            continue
        for text in _strings(value):
            found.add(text)
            credential = text.strip().split(None, 1)[1:]  # after the scheme: Bearer, Basic, Token, ...
            if credential and credential[0].strip():
                found.add(credential[0].strip())
    return found


def hide_credential_headers(module, option="headers"):
    """Make the credential values of the module's `option` no_log values of `module` (an AnsibleModule)."""
    module.no_log_values.update(credential_values((module.params or {}).get(option)))


class HeaderRedactingModule(AnsibleModule):
    """The AnsibleModule of a module that takes `headers`: its credential values are no_log values from the
    moment the arguments are read, before AnsibleModule validates them (a failed validation returns
    `invocation`) and logs the invocation to syslog, which happen while it is being created.

    Warnings are masked here: since ansible-core 2.19 a warning is recorded as an object that the masking
    of the result passes over, so a no_log value in its text would be shown (api_key's as well)."""

    def _load_params(self):
        super()._load_params()
        hide_credential_headers(self)

    def warn(self, warning, *args, **kwargs):
        super().warn(remove_values(warning, self.no_log_values), *args, **kwargs)
