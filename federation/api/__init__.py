"""The HTTP API: ``create_app`` assembles routes, error handling and the context."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import orjson
from fastapi import FastAPI

from federation import __version__
from federation.api import (
    api_keys,
    broker,
    federate,
    graphql,
    health,
    keys,
    principals,
    problems,
    runs,
    tokens,
    wellknown,
)
from federation.api.deps import AppContext, TraceMiddleware
from federation.api.issue_path import IssueTokenMiddleware
from federation.api.lifespan import rotation_lifespan
from federation.api.limits import BodyLimitMiddleware
from federation.api.upstreams import Upstreams
from federation.clock import Clock, SystemClock
from federation.direct_issue import DirectIssue
from federation.issuance import TokenIssuer
from federation.keys import Keyring
from federation.settings import Settings
from federation.store import Store

DESCRIPTION = """An OIDC identity-federation token issuer for agent runs.

Authenticate with an API key: `Authorization: Bearer wk-...`. Every error is
`application/problem+json` with an Oz error code."""


def create_app(
    settings: Settings, *, store: Store, keyring: Keyring, clock: Clock | None = None
) -> FastAPI:
    """The application, on an opened store and a loaded keyring (no I/O here)."""
    clock = clock or SystemClock()
    issuer = TokenIssuer.from_settings(settings, keyring, clock)
    app = FastAPI(
        lifespan=rotation_lifespan(
            keyring,
            timedelta(seconds=settings.key_rotation_period),
            settings.rotation_check_interval,
        ),
        title="federation",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.context = AppContext(
        settings=settings,
        store=store,
        keyring=keyring,
        clock=clock,
        issuer=issuer,
        direct_issue=DirectIssue(store, issuer, clock),
        discovery=orjson.dumps(wellknown.discovery_document(settings)),
        upstreams=Upstreams(),
    )
    app.state.graphql_documents = graphql.Documents(graphql.SCHEMA)
    problems.install(app)
    app.add_middleware(IssueTokenMiddleware, context=app.state.context)  # innermost
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    app.add_middleware(TraceMiddleware)  # the trace id exists for every answer but these:
    issuer_path = urlsplit(settings.issuer).path.rstrip("/")
    app.add_middleware(
        wellknown.DocumentsMiddleware,
        context=app.state.context,
        prefixes={"", issuer_path},
    )
    modules = (
        wellknown,
        health,
        federate,
        broker,
        graphql,
        principals,
        api_keys,
        runs,
        keys,
        tokens,
    )
    for module in modules:
        app.include_router(module.router)
    app.state.route_methods = problems.route_methods(module.router for module in modules)
    if issuer_path:
        # Verifiers look for discovery under the issuer URL, path included.
        app.include_router(wellknown.router, prefix=issuer_path, include_in_schema=False)
    return app


__all__ = ["create_app"]
