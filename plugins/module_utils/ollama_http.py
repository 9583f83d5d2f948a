# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP for the collection's clients: Ansible's URL layer with one TLS context per client.

`open_url` builds a new TLS context, loading the whole CA bundle, for every request (~50 ms), even
for plain HTTP; a module that makes a dozen requests would spend more time there than talking to
the server. The context is built once, and only when an https URL is actually opened.

Redirects of GET and HEAD are followed here, not by urllib: urllib's handler copies every header,
Authorization included, to whatever host a redirect names, and keeps the TLS context of the first
URL for all the hops.
"""

from __future__ import annotations

import re
import ssl
from inspect import signature
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit

from ansible.module_utils.urls import Request, make_context

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import display_url

# ansible-core 2.17 added Request.open(context=); on 2.16 each request builds its own TLS context from
# validate_certs and ca_path (the same checks, only slower)
_OPEN_TAKES_CONTEXT = "context" in signature(Request.open).parameters

REDIRECT_CODES = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10
# what a request to another origin may still carry: headers that describe the request, not who makes it
# (any other header, Authorization or a gateway's own, may be a credential)
CROSS_ORIGIN_HEADERS = frozenset(("accept", "accept-encoding", "range", "user-agent"))
_DEFAULT_PORTS = {"http": 80, "https": 443}
# what http.client takes for a header name: no colon or line break, and no whitespace first
_HEADER_NAME = re.compile(r"[^:\s][^:\r\n]*")


class RedirectError(URLError):
    """A redirect the client does not follow: too many of them, or to a URL that is not http(s)."""


def origin(url):
    """(scheme, host, port) of an absolute URL, the default port filled in; None when it has no valid one."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def check_headers(headers):
    """Raise ValueError for an entry of a user's `headers` http.client could not send, naming the header and
    never its value (which may be a credential): left to http.client, the module would die with the value
    in its traceback, which Ansible does not mask. Values are strings or integers (sent as their digits),
    Latin-1 (what HTTP/1.1 carries) and on one line."""
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"headers: {name!r} is not an HTTP header name")
        if not isinstance(value, (str, int)):
            raise ValueError(f"headers: the value of {name} is a {type(value).__name__}; give a string")
        text = str(value)
        if any(char in text for char in "\r\n\0"):
            raise ValueError(f"headers: the value of {name} has a line break or NUL, which a header cannot hold")
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"headers: the value of {name} has characters outside Latin-1, which a header "
                             "cannot carry; encode them (e.g. percent- or base64-encoding)") from None


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
            # for http URLs, where urllib wants a context all the same; verifying and without CAs, so
            # that a redirect urllib follows itself (follow_redirects other than 'safe') to https fails closed
            self._plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        return self._plain

    def _open_once(self, method, url, data, headers, timeout, follow_redirects):
        context = {"context": self._context(url)} if _OPEN_TAKES_CONTEXT else {}
        return self._request.open(
            method,
            url,
            data=data,
            headers=headers,
            timeout=timeout,
            validate_certs=self.validate_certs,
            ca_path=self.ca_path,
            follow_redirects=follow_redirects,
            force_basic_auth=False,
            use_netrc=False,
            **context,
        )

    def open(self, method, url, data=None, headers=None, timeout=30, follow_redirects="safe", trace=None):
        """Open url. With follow_redirects='safe', GET and HEAD follow up to MAX_REDIRECTS redirects, each
        hop with the TLS context of its own scheme; a hop to another origin (scheme, host, port) drops the
        headers that may be credentials, for that hop and all after it. Other modes are Ansible's.

        `trace`, a list, gets each URL opened appended, so that the caller can name the one that failed.
        """
        headers = dict(headers or {})
        if trace is None:
            trace = []
        trace.append(url)
        if follow_redirects != "safe" or method.upper() not in ("GET", "HEAD"):
            return self._open_once(method, url, data, headers, timeout, follow_redirects)
        first = url
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                return self._open_once(method, url, data, headers, timeout, "none")
            except HTTPError as err:
                location = err.headers.get("Location") if err.code in REDIRECT_CODES else None
                if not location:
                    raise
                err.close()  # the redirect's body is not read: free its connection
            target = urljoin(url, location.strip())
            if origin(target) is None:
                raise RedirectError(
                    f"{display_url(url)} redirected to {display_url(target)}, which is not an http(s) URL"
                )
            if origin(target) != origin(url):
                headers = dict((k, v) for k, v in headers.items() if k.lower() in CROSS_ORIGIN_HEADERS)
            url = target
            trace.append(url)
        raise RedirectError(
            f"{display_url(first)} led to more than {MAX_REDIRECTS} redirects (the last to {display_url(url)})"
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
