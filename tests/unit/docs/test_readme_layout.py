# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README a user reads stays short, and the documentation it leads to is all there: README.md keeps
what a user needs first in at most 300 lines and links every file of docs/, and every relative link of
README.md, docs/*.md and the roles' READMEs points to a file that exists, and ships in the built
collection, and to a heading of that file when it names one."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, *sorted((ROOT / "roles").glob("*/README.md"))]
MAX_README_LINES = 300

FENCE = re.compile(r"^```.*?^```[^\n]*$", flags=re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), the text possibly wrapped over lines
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    """The text outside code: links in code blocks and code spans are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text lowercased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set:
    anchors, seen = set(), {}
    for line in FENCE.sub("", path.read_text()).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = _slug(heading.group(1))
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links() -> list:
    found = []
    for page in PAGES:
        for target in LINK.findall(_prose(page.read_text())):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not files here
                found.append((page, target))
    return found


def _id(value):
    return str(value.relative_to(ROOT)) if isinstance(value, Path) else value


def test_readme_is_at_most_300_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines, more than {MAX_README_LINES}: move reference text to docs/ and link it")


def test_the_readme_links_every_file_of_docs():
    assert DOCS, "docs/ holds no page"
    linked = {(README.parent / target.split("#", 1)[0]).resolve() for page, target in _links() if page == README}
    assert [str(doc.relative_to(ROOT)) for doc in DOCS if doc.resolve() not in linked] == []


def test_the_pages_have_relative_links():
    # the test below must have something to check: the README's contents and docs' cross-links
    assert len(_links()) > 20


@pytest.mark.parametrize(("page", "target"), _links(), ids=_id)
def test_relative_link_points_to_an_existing_file_and_heading(page, target):
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page.resolve()
    assert resolved.exists(), f"{page.relative_to(ROOT)} links {target}: {path} does not exist"
    assert ROOT in resolved.parents or resolved == ROOT, f"{page.relative_to(ROOT)} links {target}, outside the repo"
    if anchor and resolved.suffix == ".md":
        assert anchor in _anchors(resolved), (
            f"{page.relative_to(ROOT)} links {target}: {resolved.relative_to(ROOT)} has no heading #{anchor}")


@pytest.mark.parametrize(("page", "target"), _links(), ids=_id)
def test_relative_link_points_into_the_built_collection(page, target):
    # README.md is what Galaxy shows and docs/ ships beside it: a link into a build_ignore'd path (tests/,
    # tools/, …) would be dead in the installed collection
    ignored = yaml.safe_load((ROOT / "galaxy.yml").read_text())["build_ignore"]
    resolved = (page.parent / target.partition("#")[0]).resolve()
    relative = resolved.relative_to(ROOT).as_posix()
    parts = relative.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    assert not any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes for pattern in ignored), (
        f"{page.relative_to(ROOT)} links {target}, which galaxy.yml's build_ignore leaves out of the collection")
