"""The runs pages: the list with filters, and one run with its tokens and subjects."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from federation.console.web import View, filtered_list, page, section
from federation.domain.run_states import RunState

LIST_LIMIT = 50
FILTERS = ("state", "principal_uid", "environment")
# The components are the same for every audience; this one takes any subject length.
COMPONENTS_AUDIENCE = "sts.amazonaws.com"


@page
async def list_runs(request: Request, view: View) -> Response:
    listed, filters = await filtered_list(view, "/api/v1/runs", FILTERS, LIST_LIMIT)
    return view.render(
        "runs.html",
        runs=listed["items"],
        page_info=listed["page_info"],
        filters=filters,
        states=[state.value for state in RunState],
    )


@page
async def show_run(request: Request, view: View) -> Response:
    run_id = request.path_params["run_id"]
    path = f"/api/v1/runs/{quote(run_id, safe='')}"
    run = await view.api.get(path)
    preview, preview_error = await section(
        view.api.post(f"{path}/preview-token", {"audience": COMPONENTS_AUDIENCE})
    )
    tokens, tokens_error = await section(
        view.api.get("/api/v1/tokens", {"run_id": run["run_id"], "limit": LIST_LIMIT})
    )
    return view.render(
        "run.html",
        run=run,
        preview=preview,
        preview_error=preview_error,
        tokens=tokens["items"] if tokens else [],
        tokens_error=tokens_error,
    )
