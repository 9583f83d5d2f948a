# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Registry v2 access as Ollama models use it: manifests and blobs of `registry.ollama.ai` or a mirror.

Handles the bearer-token challenge, basic auth, plain HTTP (`insecure`) and blob GETs that
redirect to another host (a CDN). Credentials go only where they were meant for: the basic ones to the
registry and to the token service its challenge names, never over plain HTTP unless `insecure` says so;
the bearer token to the registry. A redirect to another origin takes neither along (HttpTransport), and
a challenge from such a host is not answered.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import socket
import ssl
import threading
import urllib.request
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import make_context

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError, display_url
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_http import (
    HttpTransport,
    RedirectError,
    origin,
    untrusted_certificate_fix,
)

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_ACCEPT = ", ".join((MANIFEST_V2, OCI_MANIFEST))

_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]*))')
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class RegistryError(CollectionError):
    """`kind` is one of unreachable, not_found, auth, plain_http, http, protocol, timeout.

    plain_http: the registry's token service is a plain-HTTP URL and the client, not told `insecure`,
    kept the credentials to itself. Messages carry no query strings (see display_url) and no credentials.
    """

    def __init__(self, msg, kind="http", status=None, url=None):
        super().__init__(msg, kind=kind, url=url, status=status)


# What a registry failure calls for when this host downloads from the registry itself (ollama_store_model,
# an ollama_bundle export), by RegistryError kind; a not_found message already says to check the name.
_DOWNLOAD_FIXES = {
    "not_found": "or push the model to that registry",
    "unreachable": "this host downloads from the registry itself: check its network, DNS and proxy "
    "(https_proxy, no_proxy)",
    "timeout": "raise timeout, or check the network between this host and the registry",
    "auth": "set registry_username and registry_password",
}


def download_fix(err, **instead):
    """` (<fix>)` to append to the message of `err`; `instead` replaces the fix of a kind. Empty for a
    plain_http refusal, whose message names its own fix."""
    if err.kind == "plain_http":
        return ""
    return " ({})".format(dict(_DOWNLOAD_FIXES, **instead).get(err.kind, "check the registry"))


def parse_challenge(header):
    """`Bearer realm="...",service="..."` -> ("bearer", {"realm": ..., "service": ...})."""
    if not header:
        return None, {}
    scheme, rest = (header.strip().split(None, 1) + [""])[:2]
    params = dict((k.lower(), quoted if quoted else bare) for k, quoted, bare in _CHALLENGE_PARAM.findall(rest))
    return scheme.lower(), params


def content_digest(body):
    """The digest that names `body` in a registry and in Ollama's store: sha256 of its exact bytes."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def ollama_manifest_digest(manifest):
    """The digest Ollama gives a pulled manifest: it stores its own re-encoding, not the registry's bytes.

    Ollama writes the manifest back with Go's encoder (fixed field order, no spaces, empty optional
    fields left out) and lists the sha256 of that file, so compare against this as well as the
    registry's digest.
    """
    return content_digest(ollama_manifest_bytes(manifest))


def ollama_manifest_bytes(manifest):
    """The manifest file exactly as an Ollama pull writes it (Go's json.Marshal of its Manifest type)."""

    def layer(item):
        out = [
            ("mediaType", item.get("mediaType", "")),
            ("digest", item.get("digest", "")),
            ("size", int(item.get("size", 0))),
        ]
        for optional in ("from", "name"):
            if item.get(optional):
                out.append((optional, item[optional]))
        return dict(out)

    canonical = dict(
        [
            ("schemaVersion", int(manifest.get("schemaVersion", 0))),
            ("mediaType", manifest.get("mediaType", "")),
            ("config", layer(manifest.get("config") or {})),
            ("layers", [layer(item) for item in manifest.get("layers") or []]),
        ]
    )
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)
    # Go's encoder escapes these three for HTML safety
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode("utf-8")


def manifest_size(manifest):
    """Bytes of all layers plus the config: what a pull stores."""
    config = manifest.get("config") or {}
    return int(config.get("size") or 0) + sum(int(layer.get("size") or 0) for layer in manifest.get("layers") or [])


# The module options RegistryClient.from_params reads, for every module that talks to a registry.
REGISTRY_ARGS = dict(
    insecure=dict(type="bool", default=False),
    registry_username=dict(type="str"),
    registry_password=dict(type="str", no_log=True),
)
REGISTRY_REQUIRED_TOGETHER = [("registry_username", "registry_password")]


class RegistryClient:
    """One registry host. `insecure` means plain HTTP (as Ollama's flag does), not unverified TLS."""

    def __init__(
        self,
        host,
        insecure=False,
        username=None,
        password=None,
        timeout=30,
        validate_certs=True,
        ca_path=None,
        headers=None,
    ):
        self.host = host
        self.insecure = insecure
        self.base_url = "{}://{}".format("http" if insecure else "https", host)
        self.username = username
        self.password = password
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.http = HttpTransport(validate_certs=validate_certs, ca_path=ca_path)
        self.headers = dict(headers or {})
        self._token = {}  # scope -> bearer token
        # Request.open installs its opener as urllib's global one before it opens: two threads opening through
        # it at once could each use the other's. Parallel downloads open through the registry one at a time.
        self.serial = threading.RLock()
        self._direct = {}  # scheme -> an opener that does not follow redirects, for open_url

    @classmethod
    def from_params(cls, host, params):
        """The client a module's registry options describe (insecure, registry_*, timeout, TLS)."""
        return cls(
            host,
            insecure=params["insecure"],
            username=params.get("registry_username"),
            password=params.get("registry_password"),
            timeout=params["timeout"],
            validate_certs=params["validate_certs"],
            ca_path=params.get("ca_path"),
        )

    # -- transport ----------------------------------------------------------------------------

    def _basic(self):
        raw = ("{}:{}".format(self.username or "", self.password or "")).encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _where(self, url):
        """How a message names url: the registry, or the other host (token service, CDN) it stands for."""
        if origin(url) == origin(self.base_url):
            return f"registry {self.host} at {display_url(url)}"
        return f"{display_url(url)} (for registry {self.host})"

    def _raw(self, url, headers, method="GET", trace=None):
        hops = [] if trace is None else trace
        try:
            return self.http.open(method, url, headers=headers, timeout=self.timeout, trace=hops)
        except HTTPError:
            raise
        except RedirectError as err:
            raise RegistryError(
                f"registry {self.host}: {err.reason}", kind="protocol", url=display_url(url)
            ) from err
        except (socket.timeout, TimeoutError) as err:
            failed = hops[-1] if hops else url
            raise RegistryError(
                f"{self._where(failed)} did not answer within {self.timeout}s ({err})",
                kind="timeout",
                url=display_url(failed),
            ) from err
        except (URLError, UrlConnectionError, OSError) as err:
            failed = hops[-1] if hops else url
            reason = getattr(err, "reason", None) or err
            fix = untrusted_certificate_fix(err)
            if fix:
                hint = f" ({fix})"
            elif origin(failed) == origin(self.base_url) and not self.insecure:
                hint = " (a plain-HTTP registry needs insecure=true)"
            else:
                hint = ""
            raise RegistryError(
                f"cannot reach {self._where(failed)}: {reason}{hint}", kind="unreachable", url=display_url(failed)
            ) from err

    def _fetch_token(self, params, scope):
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.host} asked for a bearer token without naming a realm", kind="auth")
        realm_origin = origin(realm)
        if realm_origin is None:
            raise RegistryError(
                f"registry {self.host} named {display_url(realm)!r} as its token service, which is not an http(s) URL",
                kind="protocol",
            )
        if self.username and realm_origin[0] == "http" and not self.insecure:
            # the registry is https, but its challenge would have the password sent in clear text
            raise RegistryError(
                f"registry {self.host} names a plain-HTTP token service, {display_url(realm)}: registry_password "
                "was not sent there unencrypted. Have the registry name an https token service (its auth realm), "
                "or set insecure: true where the password may travel in clear text (insecure also talks plain "
                "HTTP to the registry itself)",
                kind="plain_http",
                url=display_url(realm),
            )
        query = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        headers = dict(self.headers)
        if self.username:
            headers["Authorization"] = self._basic()
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        hops = []
        try:
            resp = self._raw(url, headers, trace=hops)
        except HTTPError as err:
            moved = ""
            if origin(hops[-1]) != origin(url):
                moved = f", at {display_url(hops[-1])} where it redirected, which gets no credentials"
            raise RegistryError(
                "token service {} refused {} access to {} (HTTP {}{}){}".format(
                    display_url(realm),
                    query["scope"],
                    self.host,
                    err.code,
                    moved,
                    "" if self.username else ": set registry credentials if the model is private",
                ),
                kind="auth",
                status=err.code,
                url=url,
            ) from err
        try:
            data = json.loads(resp.read())
        finally:
            resp.close()
        token = data.get("token") or data.get("access_token")
        if not token:
            raise RegistryError(f"token service {display_url(realm)} answered without a token", kind="auth")
        return token

    def open(self, path, accept=None, scope=None, method="GET", extra_headers=None, trace=None, sent=None):
        """Open `path` on the registry, answering one auth challenge of the registry itself. Raises HTTPError
        for other statuses (its `url` is the hop that answered, after redirects).

        `trace`, a list, gets the URLs of the request that answered, redirects included; `sent`, a dict, the
        headers it was sent to the registry with."""
        url = self.base_url + path
        headers = dict(self.headers)
        headers.update(extra_headers or {})
        if accept:
            headers["Accept"] = accept
        token = self._token.get(scope)
        if token:
            headers["Authorization"] = "Bearer " + token
        hops = []
        try:
            resp = self._raw(url, headers, method, trace=hops)
        except HTTPError as err:
            if err.code != 401 or token:
                raise
            if origin(err.url) != origin(url):
                # a host the registry redirected to wants credentials: the registry's are not for it
                raise RegistryError(
                    "registry {} redirected {} to {}, which asks for credentials of its own ({}): the registry's "
                    "credentials are not sent to another host".format(
                        self.host,
                        path,
                        display_url(err.url),
                        err.headers.get("WWW-Authenticate") or "no challenge",
                    ),
                    status=401,
                    url=display_url(err.url),
                ) from err
            scheme, params = parse_challenge(err.headers.get("WWW-Authenticate"))
            if scheme == "bearer":
                self._token[scope] = self._fetch_token(params, scope)
                headers["Authorization"] = "Bearer " + self._token[scope]
            elif scheme == "basic" and self.username:
                headers["Authorization"] = self._basic()
            else:
                raise RegistryError(
                    "registry {} requires authentication for {} ({}){}".format(
                        self.host,
                        path,
                        err.headers.get("WWW-Authenticate") or "no challenge",
                        "" if self.username else ": set registry credentials",
                    ),
                    kind="auth",
                    status=401,
                    url=url,
                ) from err
            hops = []
            resp = self._raw(url, headers, method, trace=hops)
        if trace is not None:
            trace[:] = hops
        if sent is not None:
            sent.update(headers)
        return resp

    def forget_token(self, scope):
        """Drop the bearer token of `scope`: the next request answers the registry's challenge anew (an expired one)."""
        self._token.pop(scope, None)

    # -- API ----------------------------------------------------------------------------------

    def resolve(self, repository, reference):
        """The manifest of repository:reference -> dict(digest, ollama_digest, size, manifest, media_type)."""
        path = f"/v2/{repository}/manifests/{reference}"
        scope = f"repository:{repository}:pull"
        try:
            resp = self.open(path, accept=MANIFEST_ACCEPT, scope=scope)
        except HTTPError as err:
            detail = _error_detail(err)
            if err.code == 404:
                raise RegistryError(
                    f"model {repository}:{reference} not found in registry {self.host} (HTTP 404{detail}): check the "
                    "model name and tag",
                    kind="not_found",
                    status=404,
                    url=self.base_url + path,
                ) from err
            raise RegistryError(
                f"registry {self.host} answered HTTP {err.code} for the manifest of {repository}:{reference}{detail}",
                status=err.code,
                url=self.base_url + path,
            ) from err
        try:
            body = resp.read()
            header_digest = resp.headers.get("Docker-Content-Digest")
            media_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        finally:
            resp.close()
        try:
            manifest = json.loads(body)
        except ValueError:
            raise RegistryError(
                f"registry {self.host} sent a manifest for {repository}:{reference} that is not JSON", kind="protocol"
            ) from None
        if not isinstance(manifest, dict) or "layers" not in manifest:
            raise RegistryError(
                "registry {} sent {} for {}:{}, not an image manifest with layers".format(
                    self.host, media_type or "an unknown document", repository, reference
                ),
                kind="protocol",
            )
        return {
            "digest": header_digest or content_digest(body),
            "ollama_digest": ollama_manifest_digest(manifest),
            "size": manifest_size(manifest),
            "media_type": media_type or manifest.get("mediaType"),
            "manifest": manifest,
        }

    def open_blob(self, repository, digest, offset=0, end=None, trace=None, sent=None):
        """A streamed response for one blob, from byte `offset` (to byte `end`, inclusive, when given). A redirect
        to a blob host (a CDN, an object store) takes the range along but no registry credentials; one on the
        registry's own origin keeps them. `trace` and `sent` as for open()."""
        path = f"/v2/{repository}/blobs/{digest}"
        scope = f"repository:{repository}:pull"
        headers = {}
        if offset or end is not None:
            headers["Range"] = "bytes={}-{}".format(offset, "" if end is None else end)
        try:
            return self.open(path, scope=scope, extra_headers=headers, trace=trace, sent=sent)
        except HTTPError as err:
            raise self._blob_error(err, repository, digest) from err

    def _blob_error(self, err, repository, digest):
        if origin(err.url) == origin(self.base_url):
            return RegistryError(
                f"registry {self.host} answered HTTP {err.code} for blob {digest} of {repository}{_error_detail(err)}",
                kind="not_found" if err.code == 404 else "http",
                status=err.code,
                url=display_url(err.url),
            )
        return RegistryError(
            f"blob host {display_url(err.url)} answered HTTP {err.code} for {digest}",
            status=err.code,
            url=display_url(err.url),
        )

    def open_url(self, url, headers):
        """GET `url` as it is, without following redirects (a 3xx is an HTTPError): safe in parallel threads,
        unlike open(). For the blob URL the registry redirected to (RegistryBlobSource)."""
        scheme = url.split(":", 1)[0].lower()
        with self.serial:
            opener = self._direct.get(scheme)
            if opener is None:
                if scheme == "https":
                    context = make_context(cafile=self.ca_path, validate_certs=self.validate_certs)
                else:
                    # as HttpTransport's for plain HTTP: verifying and without CAs, so nothing TLS passes
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())
                self._direct[scheme] = opener
        request = urllib.request.Request(url, headers=dict(headers, **{"User-Agent": "aiplatform.ollama"}))
        try:
            return opener.open(request, timeout=self.timeout)
        except HTTPError:
            raise
        except (socket.timeout, TimeoutError) as err:
            raise RegistryError(
                f"{self._where(url)} did not answer within {self.timeout}s ({err})",
                kind="timeout",
                url=display_url(url),
            ) from err
        except (URLError, OSError) as err:
            reason = getattr(err, "reason", None) or err
            fix = untrusted_certificate_fix(err)
            raise RegistryError(
                "cannot reach {}: {}{}".format(self._where(url), reason, f" ({fix})" if fix else ""),
                kind="unreachable",
                url=display_url(url),
            ) from err


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect comes back as an HTTPError: the caller decides where to go (through the registry again)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class RegistryBlobSource:
    """One blob of a repository as a source of a download in ranged parts (module_utils/blob_download.py).

    The first request goes through the registry (open_blob: its auth, its redirects, credentials only where they
    belong) and records where it ended: the CDN URL a blob GET redirects to. Every further part is a ranged GET
    of that URL itself, sent the headers the last hop of the first request was sent (the registry's credentials
    only when every hop stayed on the registry's origin), as Ollama fetches its parts from the redirect's
    Location. A URL that stops working (a signed one expired: 401, 403, 404, 410, or a redirect again) is found
    anew through the registry; an expired bearer token is fetched anew.
    """

    def __init__(self, client, repository, digest, size):
        self.client = client
        self.repository = repository
        self.digest = digest
        self.size = size
        self.scope = f"repository:{repository}:pull"
        self.location = None  # (url, headers) of the direct requests

    def open(self, start, end):
        """(response, begins, stops): bytes [begins, stops) of the blob, covering [start, end) when the server
        honoured the range, the whole blob from 0 when it did not."""
        location = self.location
        if location is not None:
            try:
                answer = self._direct(location, start, end)
            except HTTPError as err:
                err.close()
                if not (300 <= err.code < 400 or err.code in (401, 403, 404, 410)):
                    raise self.client._blob_error(err, self.repository, self.digest) from err
                if err.code == 401 and origin(location[0]) == origin(self.client.base_url):
                    self.client.forget_token(self.scope)
                answer = None
            if answer is not None:
                return answer
            self.location = None
        return self._through_registry(start, end)

    def retryable(self, err):
        """Whether another attempt may succeed: a network failure or a server's passing trouble."""
        if isinstance(err, RegistryError):
            return err.kind in ("unreachable", "timeout") or (err.status or 0) >= 500 or err.status == 429
        return isinstance(err, (OSError, http.client.HTTPException))

    def _through_registry(self, start, end):
        whole = start == 0 and end >= self.size
        hops, sent = [], {}
        with self.client.serial:
            resp = self.client.open_blob(
                self.repository, self.digest, start, None if whole else end - 1, trace=hops, sent=sent
            )
        if whole or (getattr(resp, "status", None) or resp.getcode()) == 200:
            return resp, 0, self.size  # the whole blob, asked for or because the server ignored the range
        span = self._span(resp, start)
        if span is None:
            resp.close()
            # a 206 that does not say which bytes it holds (or not those asked for): the whole blob instead
            with self.client.serial:
                resp = self.client.open_blob(self.repository, self.digest)
            return resp, 0, self.size
        final = hops[-1] if hops else self.client.base_url
        own = all(origin(hop) == origin(self.client.base_url) for hop in hops)
        headers = dict(sent) if own else {}
        headers = {k: v for k, v in headers.items() if k.lower() not in ("range", "accept", "user-agent")}
        self.location = (final, headers)
        return resp, span[0], span[1]

    def _direct(self, location, start, end):
        url, headers = location
        resp = self.client.open_url(url, dict(headers, Range=f"bytes={start}-{end - 1}"))
        span = self._span(resp, start)
        if span is None:
            resp.close()
            return None  # it answered, but not with the range: the registry is asked again, and decides
        return resp, span[0], span[1]

    def _span(self, resp, start):
        """[begins, stops) of a 206 answer that starts where asked and is of this blob; None otherwise."""
        status = getattr(resp, "status", None) or resp.getcode()
        if status != 206:
            return None
        match = _CONTENT_RANGE.match(resp.headers.get("Content-Range") or "")
        if not match or int(match.group(1)) != start:
            return None
        if match.group(3) != "*" and int(match.group(3)) != self.size:
            return None
        return start, min(int(match.group(2)) + 1, self.size)


def _error_detail(err):
    try:
        data = json.loads(err.read())
        errors = data.get("errors") or []
        if errors:
            return ": " + "; ".join("{} {}".format(e.get("code", ""), e.get("message", "")) for e in errors)
    except Exception:
        pass
    return ""
