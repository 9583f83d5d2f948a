"""What counts as the same origin when a redirect decides whether credentials go along, and how URLs
appear in messages. The integration tests (test_registry_credentials.py) cover the redirects
themselves against a real nginx; these are the cases a local server cannot show, such as default ports."""

from __future__ import annotations

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import display_url
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_http import origin


@pytest.mark.parametrize(("a", "b"), [
    ("http://registry.example.com/v2/", "http://registry.example.com:80/token"),
    ("https://registry.example.com/v2/", "https://REGISTRY.example.com:443/blobs"),
    ("HTTPS://registry.example.com:5000/a", "https://registry.example.com:5000/b?x=1"),
])
def test_same_origin(a, b):
    assert origin(a) == origin(b) is not None


@pytest.mark.parametrize(("a", "b"), [
    ("https://registry.example.com/v2/", "http://registry.example.com/v2/"),  # a downgrade to plain HTTP
    ("https://registry.example.com/v2/", "https://registry.example.com:8443/v2/"),
    ("https://registry.example.com/v2/", "https://cdn.registry.example.com/v2/"),  # a subdomain is another host
    ("http://127.0.0.1:5000/v2/", "http://localhost:5000/v2/"),
])
def test_other_origin(a, b):
    assert origin(a) != origin(b)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/x", "http://host:99999/x", "/relative", "http:///x"])
def test_no_origin_for_what_a_redirect_may_not_lead_to(url):
    assert origin(url) is None


def test_display_url_drops_query_and_fragment():
    assert display_url("https://cdn.example.com/blob/sha256:ab?X-Amz-Signature=s3cr3t#f") == (
        "https://cdn.example.com/blob/sha256:ab")
