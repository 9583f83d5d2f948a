# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one base of every error the collection's code raises, and what a failed task returns about it.

A module catches `CollectionError` once, in `main()`, and fails with the message and `error`:
the kind of failure, and where known the URL (without its query string, which may be a signed
credential), the HTTP status, a bounded excerpt of the body and the subject (path, digest, member),
so that a playbook can branch on `result.error.kind` instead of parsing the message.
"""

from __future__ import annotations

from urllib.parse import urlsplit

BODY_EXCERPT_CHARS = 300


def display_url(url):
    """The URL without query string and fragment, for messages: a signed URL's query is a credential.

    Here, at the bottom, because every error's `url` goes through it; the HTTP and registry clients use it too.
    """
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


def excerpt(body, limit=BODY_EXCERPT_CHARS):
    """At most `limit` characters of a response body, whitespace collapsed; None when empty."""
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = " ".join(str(body).split())
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CollectionError(Exception):
    """A failure with a message a person can act on, plus its structured context.

    `kind` names the failure (each subclass documents its kinds); `url`, `status` and `body` are set
    for network failures; further keyword arguments (path, digest, member, ...) name the subject.
    """

    default_kind = "error"

    def __init__(self, msg, kind=None, url=None, status=None, body=None, **subject):
        super().__init__(msg)
        self.msg = msg
        self.kind = kind or self.default_kind
        self.url = url
        self.status = status
        self.body = body
        for name, value in subject.items():
            setattr(self, name, value)
        self._subject = subject

    def __str__(self):
        return self.msg

    def details(self):
        """The `error` of a failed task's result: only what is known, nothing secret."""
        found = {"kind": self.kind}
        if self.url:
            found["url"] = display_url(self.url)
        if self.status is not None:
            found["status"] = self.status
        body = excerpt(self.body)
        if body:
            found["body"] = body
        found.update((name, value) for name, value in self._subject.items()
                     if value is not None and isinstance(value, (str, int, float, bool)))
        return found


class InputError(CollectionError, ValueError):
    """A value the caller gave that cannot be used; the message names it, what was found and the fix."""

    default_kind = "invalid_input"
