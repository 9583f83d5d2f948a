"""docs/security.md names, for each promise, the tests that hold it: every cited file exists and every
cited test is defined in it, so a moved or renamed test cannot leave a promise citing nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SECURITY = ROOT / "docs" / "security.md"
# a bare file name is under this folder, as the page's introduction says
DEFAULT_FOLDER = ROOT / "tests" / "integration" / "ollama_modules"
CITATION = re.compile(r"`((?:[\w./-]+\.(?:py|yml))?(?:::\w+)?)`")


def _citations() -> list[tuple[str, str | None]]:
    """(file, test or None) per citation of the table's test column; `::name` continues the file before it."""
    cited = []
    for row in SECURITY.read_text().splitlines():
        if not row.startswith("| ") or row.startswith(("| promise", "|---")):
            continue
        current = None
        for text in CITATION.findall(row.rsplit(" | ", 1)[-1]):
            path, _, test = text.partition("::")
            current = path or current
            assert current, f"{text} in docs/security.md follows no file"
            cited.append((current, test or None))
    return cited


CITATIONS = _citations()


def _file(path: str) -> Path:
    return ROOT / path if "/" in path else DEFAULT_FOLDER / path


def test_the_page_cites_tests():
    assert len(CITATIONS) > 30


@pytest.mark.parametrize(("path", "test"), CITATIONS, ids=[f"{p}::{t}" if t else p for p, t in CITATIONS])
def test_a_cited_test_exists(path, test):
    source = _file(path)
    assert source.is_file(), f"docs/security.md cites {path}, which is not {source.relative_to(ROOT)}"
    if test:
        assert re.search(rf"^def {test}\(", source.read_text(), re.M), \
            f"docs/security.md cites {test}, which {source.relative_to(ROOT)} does not define"
