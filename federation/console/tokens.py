"""The issued tokens page: the audit log, newest first; never a token itself."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from federation.console.web import View, filtered_list, page

LIST_LIMIT = 50
FILTERS = ("run_id", "principal_uid", "audience")


@page
async def list_tokens(request: Request, view: View) -> Response:
    listed, filters = await filtered_list(view, "/api/v1/tokens", FILTERS, LIST_LIMIT)
    return view.render(
        "tokens.html", tokens=listed["items"], page_info=listed["page_info"], filters=filters
    )
