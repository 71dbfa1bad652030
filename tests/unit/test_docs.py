"""The README is a front door and docs/ stands on its own: the README stays small and
links every page; every page says first what it assumes the reader knows; every
relative link and image, in the README, docs/ and examples/, names a file that exists
(and a heading of it, when it names one); nothing cites a document outside the
repository."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.markdown import README, ROOT, anchors, doc_pages, links, prose_lines, slug

README_LIMIT = 15 * 1024
PAGES = [README, *doc_pages(), *sorted((ROOT / "examples").rglob("*.md"))]


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_readme_is_under_15_kb() -> None:
    size = README.stat().st_size
    assert size < README_LIMIT, f"README.md is {size} bytes; move reference text to docs/"


def test_the_readme_links_every_page_of_docs() -> None:
    linked = {
        (ROOT / unquote(target.split("#", 1)[0])).resolve()
        for target in links(README.read_text(encoding="utf-8"))
        if target.endswith(".md") or ".md#" in target
    }
    missing = [relative(page) for page in doc_pages() if page.resolve() not in linked]
    assert doc_pages(), "docs/ has no pages"
    assert not missing, f"README.md links none of {missing}"


@pytest.mark.parametrize("page", doc_pages(), ids=relative)
def test_each_page_starts_with_what_it_assumes(page: Path) -> None:
    lines = [line for line in prose_lines(page.read_text(encoding="utf-8")) if line.strip()]
    assert lines[0].startswith("# "), "a page starts with its title"
    assert lines[1].startswith("This page assumes"), "then says what the reader should know"


def link_targets() -> list[tuple[str, str]]:
    """(page, target) for every relative link and image of every page."""
    found = []
    for page in PAGES:
        for target in links(page.read_text(encoding="utf-8")):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                found.append((relative(page), target))
    return found


@pytest.mark.parametrize(("page", "target"), link_targets())
def test_each_relative_link_resolves(page: str, target: str) -> None:
    path_part, _, anchor = target.partition("#")
    source = ROOT / page
    destination = (source.parent / unquote(path_part)).resolve() if path_part else source
    assert destination.is_relative_to(ROOT), f"{page}: {target} leaves the repository"
    assert destination.exists(), f"{page}: {target} names no file"
    if anchor:
        assert destination.suffix == ".md", f"{page}: {target}: an anchor into a non-page"
        known = anchors(destination.read_text(encoding="utf-8"))
        assert anchor in known, f"{page}: {target}: no such heading; there are {sorted(known)}"


def test_the_pages_have_links_to_check() -> None:
    """The link test above sees links of every kind it checks (a broken parser would
    find none and pass)."""
    targets = [target for _, target in link_targets()]
    assert any("#" in target and not target.startswith("#") for target in targets)
    assert any(target.endswith(".png") for target in targets)
    assert any(target.startswith("../") for target in targets)


def test_slugs_are_githubs() -> None:
    assert slug("Where keys live (`FEDERATION_KEY_STORE`)") == (
        "where-keys-live-federation_key_store"
    )
    assert slug("Stand-ins: the clouds' token services on loopback") == (
        "stand-ins-the-clouds-token-services-on-loopback"
    )
    assert slug("Walk-through: from `make run` to a verified token") == (
        "walk-through-from-make-run-to-a-verified-token"
    )


# Documents that are not part of the repository: the docs must not send a reader there.
# A section sign is allowed after a standard's number (RFC 7515 §2), never alone.
OUTSIDE = re.compile(
    r"(?-i:DESIGN)|\bthe seed\b|\bseed's\b|(?<![0-9] )§|\bthe contract\b", re.IGNORECASE
)


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_no_page_cites_a_document_outside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    cited = [line for line in text.splitlines() if OUTSIDE.search(line)]
    assert not cited, f"{relative(page)} cites outside documents: {cited}"
