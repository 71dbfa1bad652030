"""Keyset pagination over ``seq``: newest first, cursors opaque to clients."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

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


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "seq" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest(
            "cursor is not valid; pass next_cursor from the previous page"
        ) from None


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
