"""The one list shape: ``{"items": [...], "page_info": {...}}``, newest first."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from federation.api.schemas import ListOut, PageInfo
from federation.store.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest

M = TypeVar("M", bound=BaseModel)


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=256, description="next_cursor of the previous page.")
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


Paging = Annotated[PageRequest, Depends(page_request)]


def list_out(page: Page[Any], item: type[M]) -> ListOut[M]:
    """``page`` in the list shape, each of its items read by ``item`` from its attributes."""
    return ListOut[M](
        items=[item.model_validate(found) for found in page.items],
        page_info=PageInfo.model_validate(page),
    )
