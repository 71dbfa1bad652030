"""The one list shape: ``{"items": [...], "page_info": {...}}``, newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Query

from federation.api.schemas import ListOut, PageInfo
from federation.store.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest

T = TypeVar("T")
R = TypeVar("R")


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=256, description="next_cursor of the previous page.")
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


Paging = Annotated[PageRequest, Depends(page_request)]


def list_out(page: Page[T], render: Callable[[T], R]) -> ListOut[R]:
    return ListOut[R](
        items=[render(item) for item in page.items],
        page_info=PageInfo(has_next_page=page.has_next_page, next_cursor=page.next_cursor),
    )
