# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which Ollama release the service runs, and what installing it takes: the install directory's plan.

Layout: `<install_dir>/versions/<version>/` holds one unpacked release archive (`bin/ollama`,
`lib/ollama/`), `current` links to the one the unit runs and `previous` to the one it ran before. A
version directory appears only complete (the archive is unpacked beside it and renamed into place), so
an upgrade is a new directory and a flip of `current`, and a rollback a flip back to `previous`
without any download. The plan is decided here from what the host holds, before anything changes.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}\Z")
_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})\Z")
MARKER = ".aiplatform-archive-sha256"


class ServiceReleaseError(InputError):
    """A release setting the role cannot act on; the message names the variable and the fix."""


def version_name(version):
    text = str(version or "").strip()
    if not _VERSION.match(text) or text in (".", ".."):
        raise ServiceReleaseError(
            f"ollama_service_version is {version!r}: give the release the archive holds, as `ollama --version` "
            "reports it, e.g. 0.18.3 (letters, digits and . _ + - only)"
        )
    return text


def checksum(value):
    match = _SHA256.match(str(value or "").strip())
    if not match:
        return None
    return "sha256:" + match.group(1).lower()


def archive_source(url="", src="", sha256=""):
    """(kind, location, checksum) of the release archive; refuses a source without a sha256."""
    url, src = str(url or "").strip(), str(src or "").strip()
    if url and src:
        raise ServiceReleaseError(
            f"ollama_service_archive_url is {url!r} and ollama_service_archive_src is {src!r}: "
            "give one of them"
        )
    if not url and not src:
        raise ServiceReleaseError(
            "neither ollama_service_archive_url nor ollama_service_archive_src is set and this version is not "
            "installed: give the URL of the Linux release archive (ollama-linux-amd64.tgz of the release) or a "
            "file on the controller, with its ollama_service_archive_checksum"
        )
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.scheme == "file"):
            raise ServiceReleaseError(
                f"ollama_service_archive_url is {url!r}: give an http(s) or file URL of the release archive"
            )
    elif not src.startswith("/") and not src.startswith("~"):
        raise ServiceReleaseError(
            f"ollama_service_archive_src is {src!r}: give the absolute path of the archive on the controller"
        )
    digest = checksum(sha256)
    if digest is None:
        subject = "ollama_service_archive_url" if url else "ollama_service_archive_src"
        raise ServiceReleaseError(
            f"{subject} is set but ollama_service_archive_checksum is {str(sha256 or '')!r}: nothing is unpacked "
            "without its sha256. Fix: set ollama_service_archive_checksum to sha256:<64 hex digits> (the release's "
            "sha256sum.txt lists it)"
        )
    return ("url", url, digest) if url else ("src", src, digest)


def release_plan(version, rollback=False, current="", previous="", installed=None, archive=None,
                 remove_obsolete=True):
    """What the install directory needs for this run.

    `current` and `previous` are the versions the links point at ("" when missing), `installed` maps each
    complete version directory to the checksum recorded in it ("" when unknown), `archive` is
    {url, src, checksum} from the inventory. Returns {version, install, source, checksum, flip, previous,
    obsolete, changed, message}: `obsolete` lists the installed versions neither link will point at once the
    run is done, which the role removes after the release serves (none unless `remove_obsolete`). A rollback
    removes none, so the release it left can be switched to again without a download.
    """
    installed = dict(installed or {})
    archive = dict(archive or {})
    if rollback:
        if not previous:
            raise ServiceReleaseError(
                "ollama_service_rollback is true but there is no previous version to go back to "
                f"(current: {current or 'none'}). Fix: set ollama_service_version to an installed version "
                f"({', '.join(sorted(installed)) or 'none installed'}) instead"
            )
        if previous not in installed:
            raise ServiceReleaseError(
                f"ollama_service_rollback is true but the previous version {previous} is no longer installed. "
                "Fix: install it again with ollama_service_version and its archive"
            )
        flip = current != previous
        return {"version": previous, "install": False, "source": None, "location": None,
                "checksum": installed[previous],
                "flip": flip, "previous": previous if flip else "", "obsolete": [], "changed": flip,
                "message": f"roll back from {current} to {previous}" if flip else f"already rolled back to {previous}"}
    version = version_name(version)
    given = any(str(archive.get(k) or "").strip() for k in ("url", "src", "checksum"))
    source = archive_source(archive.get("url"), archive.get("src"), archive.get("checksum")) if (
        given or version not in installed) else None
    if version in installed:
        recorded = installed[version]
        if source and recorded and recorded != source[2]:
            raise ServiceReleaseError(
                f"ollama_service_version {version} is installed from an archive with {recorded}, but "
                f"ollama_service_archive_checksum is {source[2]}: one version, one archive. Fix: give the other "
                "build its own ollama_service_version, or correct the checksum"
            )
    install = version not in installed
    flip = current != version
    new_previous = current if flip and current else ""
    kept = {version, new_previous if flip else previous}
    obsolete = sorted(name for name in installed if name not in kept) if remove_obsolete else []
    if install:
        message = f"install {version}" + (f" (upgrade from {current})" if current else "")
    elif flip:
        message = f"switch from {current or 'none'} to the installed {version}"
    else:
        message = f"{version} is installed and current"
    return {"version": version, "install": install, "source": source[0] if source else None,
            "location": source[1] if source else None,
            "checksum": source[2] if source else installed.get(version, ""),
            "flip": flip, "previous": new_previous, "obsolete": obsolete, "changed": install or flip or bool(obsolete),
            "message": message + (f"; remove {', '.join(obsolete)} (neither current nor previous)" if obsolete else "")}
