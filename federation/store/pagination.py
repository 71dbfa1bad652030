"""Keyset pagination over ``seq``: newest first, cursors opaque to clients."""

from __future__ import annotations

import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from federation._internal.encoding import b64url_decode, b64url_text
from federation.errors import InvalidRequest

T = TypeVar("T")
MAX_LIMIT = 500
DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None

    @property
    def has_next_page(self) -> bool:
        return self.next_cursor is not None


_MAX_SEQ = 2**63 - 1


def encode_cursor(position: int | str) -> str:
    """An opaque cursor for a ``seq`` (int) or a string key."""
    kind = "seq" if isinstance(position, int) else "key"
    return b64url_text(f"{kind}:{position}".encode())


def _decode(cursor: str, kind: str) -> str:
    try:
        text = b64url_decode(cursor).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        text = ""
    prefix, _, value = text.partition(":")
    if prefix != kind or not value:
        raise InvalidRequest("cursor is not valid; pass next_cursor from the previous page")
    return value


def decode_cursor(cursor: str) -> int:
    number = _decode(cursor, "seq")
    if not (number.isascii() and number.isdigit()) or int(number) > _MAX_SEQ:
        raise InvalidRequest("cursor is not valid; pass next_cursor from the previous page")
    return int(number)


def paginate_items(items: Sequence[T], key: Callable[[T], str], page: PageRequest) -> Page[T]:
    """Page through ``items`` already in newest-first order, by a stable string key."""
    start = 0
    if page.cursor is not None:
        after = _decode(page.cursor, "key")
        keys = [key(item) for item in items]
        if after not in keys:
            raise InvalidRequest("cursor is not valid; pass next_cursor from the previous page")
        start = keys.index(after) + 1
    chosen = list(items[start : start + page.limit])
    more = start + page.limit < len(items)
    return Page(items=chosen, next_cursor=encode_cursor(key(chosen[-1])) if more else None)


def paginate(
    session: Session, statement: Select[Any], seq: InstrumentedAttribute[int], page: PageRequest
) -> Page[Any]:
    """Run ``statement`` (selecting one entity) one page at a time, newest first."""
    if page.cursor is not None:
        statement = statement.where(seq < decode_cursor(page.cursor))
    rows = list(session.scalars(statement.order_by(seq.desc()).limit(page.limit + 1)))
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        return Page(items=rows, next_cursor=encode_cursor(rows[-1].seq))
    return Page(items=rows, next_cursor=None)
