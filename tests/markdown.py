"""Reading the project's Markdown as the tests need it: sections, fenced blocks, links
and heading anchors (as GitHub renders them)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); text may hold one level of brackets.
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


@dataclass(frozen=True)
class Block:
    language: str
    text: str


def doc_pages() -> list[Path]:
    """Every Markdown page under docs/."""
    return sorted(DOCS.rglob("*.md"))


def _prose(text: str) -> list[tuple[int, str]]:
    """(index, line) of each line outside fenced code blocks."""
    lines: list[tuple[int, str]] = []
    fence = ""
    for index, line in enumerate(text.splitlines()):
        opened = _FENCE.match(line)
        if fence:
            if opened and line.strip().startswith(fence) and not opened[2]:
                fence = ""
        elif opened:
            fence = opened[1]
        else:
            lines.append((index, line))
    return lines


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    return [line for _, line in _prose(text)]


def fenced_blocks(text: str) -> list[Block]:
    """The fenced code blocks of ``text``, in order, with their info string's language."""
    blocks: list[Block] = []
    body: list[str] = []
    fence, language = "", ""
    for line in text.splitlines():
        opened = _FENCE.match(line)
        if fence:
            if opened and line.strip().startswith(fence) and not opened[2]:
                blocks.append(Block(language, "\n".join(body) + "\n"))
                fence, body = "", []
            else:
                body.append(line)
        elif opened:
            fence, language = opened[1], opened[2]
    return blocks


def section(text: str, title_start: str) -> str:
    """The section whose heading starts with ``title_start``, heading included, up to the
    next heading of the same or a higher level (lines in code blocks are no headings)."""
    lines = text.splitlines()
    start, level = None, 0
    for index, line in _prose(text):
        heading = _HEADING.match(line)
        if not heading:
            continue
        if start is None and heading[2].startswith(title_start):
            start, level = index, len(heading[1])
        elif start is not None and len(heading[1]) <= level:
            return "\n".join(lines[start:index]) + "\n"
    if start is None:
        raise LookupError(f"no section starting {title_start!r}")
    return "\n".join(lines[start:]) + "\n"


def links(text: str) -> list[str]:
    """The targets of the links and images outside code (fenced blocks and code spans)."""
    found = []
    for line in prose_lines(text):
        found += _LINK.findall(_CODE_SPAN.sub("", line))
    return found


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: the rendered text (code marks and link
    targets dropped), lower-cased, punctuation but ``-`` and ``_`` removed, spaces
    turned into ``-``."""
    rendered = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    kept = re.sub(r"[^\w\- ]", "", rendered.lower())
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a page, repeated headings numbered as GitHub numbers them
    (``name``, ``name-1``, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(text):
        heading = _HEADING.match(line)
        if not heading:
            continue
        name = slug(heading[2])
        count = seen.get(name, 0)
        seen[name] = count + 1
        found.add(name if count == 0 else f"{name}-{count}")
    return found
