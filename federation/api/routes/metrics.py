"""``GET /metrics``: the Prometheus text format; and the observer that times requests.

Who may read it is ``FEDERATION_METRICS``: ``admin`` (the default) asks for an API key
with the admin scope, ``public`` answers anyone, ``off`` serves nothing and counts
nothing. The issuer's listener faces the clouds, and so the internet: the metrics tell
traffic, error rates, which clouds are used and when keys rotate, which is no one
else's business unless the operator decides otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from starlette.types import Scope

from federation.api.deps import CurrentCaller
from federation.observability.metrics import CONTENT_TYPE, Metrics
from federation.registry.auth import Scope as KeyScope

PATH = "/metrics"
UNMATCHED = "unmatched"  # the route of a request no route took (a 404)


class RequestMetrics:
    """The metrics observer: latency by route template and method, errors by code."""

    def __init__(self, metrics: Metrics, *, fixed_routes: Iterable[str] = ()) -> None:
        self.metrics = metrics
        # paths answered before routing (issue-token, discovery, JWKS): their own template
        self.fixed_routes = frozenset(fixed_routes)

    def finished(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None)
        if route is None:
            path = scope["path"]
            route = path if path in self.fixed_routes else UNMATCHED
        self.metrics.request(route, scope["method"], status, seconds)


def _exposition(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE)


def router(access: str) -> APIRouter:
    """The ``/metrics`` route for ``FEDERATION_METRICS`` (``admin`` or ``public``)."""
    found = APIRouter(tags=["operations"], include_in_schema=False)
    # NOTE: plain functions, so that reading the worker files runs in a thread
    if access == "public":

        @found.get(PATH)
        def public_metrics(request: Request) -> Response:
            return _exposition(request)

    else:

        @found.get(PATH)
        def admin_metrics(request: Request, caller: CurrentCaller) -> Response:
            caller.require(KeyScope.ADMIN)
            return _exposition(request)

    return found
