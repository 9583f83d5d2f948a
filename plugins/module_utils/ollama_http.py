# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP for the collection's clients: Ansible's URL layer with one TLS context per client.

`open_url` builds a new TLS context, loading the whole CA bundle, for every request (~50 ms), even
for plain HTTP; a module that makes a dozen requests would spend more time there than talking to
the server. The context is built once, and only when an https URL is actually opened.
"""

from __future__ import annotations

import ssl

from ansible.module_utils.urls import Request, make_context


class HttpTransport:
    """Opens URLs through `ansible.module_utils.urls.Request`: environment proxies, CA path, certificate checks."""

    def __init__(self, validate_certs=True, ca_path=None, http_agent="aiplatform.ollama"):
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self._request = Request(http_agent=http_agent, use_netrc=False)
        self._tls = None
        self._plain = None

    def _context(self, url):
        if url.lower().startswith("https:"):
            if self._tls is None:
                self._tls = make_context(cafile=self.ca_path, validate_certs=self.validate_certs)
            return self._tls
        if self._plain is None:
            # never used for http; verifying and without CAs, so a redirect to https fails closed
            self._plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        return self._plain

    def open(self, method, url, data=None, headers=None, timeout=30, follow_redirects="safe"):
        return self._request.open(
            method,
            url,
            data=data,
            headers=headers or {},
            timeout=timeout,
            validate_certs=self.validate_certs,
            ca_path=self.ca_path,
            follow_redirects=follow_redirects,
            force_basic_auth=False,
            use_netrc=False,
            context=self._context(url),
        )


def untrusted_certificate_fix(err):
    """The fix for a TLS certificate the client does not trust, or '' for any other connection error."""
    reason = getattr(err, "reason", None) or err
    if isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
        return (
            "its TLS certificate is not trusted here: set ca_path to the PEM file of the CA that signed it "
            "(validate_certs: false skips the check, for tests only)"
        )
    return ""
