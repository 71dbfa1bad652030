"""The HTTP API: ``create_app`` assembles routes, error handling and the context."""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlsplit

import orjson
from fastapi import FastAPI

from federation import __version__
from federation.api import openapi, problems
from federation.api.deps import AppContext
from federation.api.lifespan import server_lifespan
from federation.api.middleware.access_log import AccessLog
from federation.api.middleware.auth_failures import AuthFailureLimitMiddleware, key_check
from federation.api.middleware.client_address import ClientAddressMiddleware
from federation.api.middleware.deadlines import DatabaseDeadlineMiddleware
from federation.api.middleware.documents import DocumentsMiddleware
from federation.api.middleware.issue_token import IssueTokenShortcut
from federation.api.middleware.observe import ObserveMiddleware, Observer
from federation.api.middleware.size_limits import BodyLimitMiddleware, HeaderLimitMiddleware
from federation.api.middleware.trace import TraceMiddleware
from federation.api.routes import (
    api_keys,
    broker,
    console_sessions,
    docs,
    federate,
    graphql,
    health,
    keys,
    log,
    principals,
    runs,
    tokens,
    wellknown,
)
from federation.api.routes import metrics as metrics_api
from federation.api.routes.federate import ISSUE_PATH
from federation.api.routes.metrics import RequestMetrics
from federation.api.upstreams import Upstreams
from federation.clock import Clock, SystemClock
from federation.console import console_app
from federation.issuing.pipeline import TokenIssuer
from federation.keys import Keyring
from federation.keys.log_keys import log_key_store
from federation.ledger import Ledger
from federation.observability.metrics import Metrics
from federation.rate_limits import Limits
from federation.settings import Settings
from federation.store import Store
from federation.store.issuing import issue_store
from federation.store.log import LogRecords

DESCRIPTION = """An OIDC identity-federation token issuer for agent runs.

Authenticate with an API key: `Authorization: Bearer wk-...`. Every error is
`application/problem+json` with an Oz error code."""
OPENAPI_URL = "/openapi.json"


def create_app(
    settings: Settings,
    *,
    store: Store,
    keyring: Keyring,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    limits: Limits | None = None,
    console_secret: bytes | None = None,
) -> FastAPI:
    """The application, on an opened store and a loaded keyring (no I/O here);
    ``metrics`` in memory unless given (a server's workers share files); ``limits``
    from the settings unless given (tests pass buckets on their own clock);
    ``console_secret`` seals console sessions (random unless given: one process's)."""
    clock = clock or SystemClock()
    if settings.metrics == "off":
        metrics = None
    elif metrics is None:
        metrics = Metrics(keyring, clock)
    issuer = TokenIssuer.from_settings(
        settings,
        issue_store(store),
        keyring,
        clock,
        on_signed=metrics.token_signed if metrics else None,
        limits=limits or Limits.from_settings(settings),
    )
    ledger = None
    if settings.transparency_log:
        ledger = Ledger(
            LogRecords(store),
            log_key_store(settings, store),
            settings.checkpoint_origin,
            clock,
        )
    app = FastAPI(
        lifespan=server_lifespan(
            keyring,
            timedelta(seconds=settings.key_rotation_period),
            settings.rotation_check_interval,
            issuer=issuer,
            ledger=ledger,
            witnesses=settings.log_witnesses,
        ),
        title="federation",
        version=__version__,
        description=DESCRIPTION,
        # NOTE: the framework's pages load Swagger UI and ReDoc from a CDN; /docs is ours
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL,
        # NOTE: the framework's own OpenTelemetry hooks look the global providers up on
        # every request; the issuer has its own access log and metrics (Operating)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.context = AppContext(
        settings=settings,
        store=store,
        keyring=keyring,
        clock=clock,
        issuer=issuer,
        discovery=orjson.dumps(
            wellknown.discovery_document(settings, ledger.verifier_key if ledger else None)
        ),
        upstreams=Upstreams(),
        ledger=ledger,
    )
    app.state.graphql_documents = graphql.Documents(
        graphql.SCHEMA, introspection=settings.graphql_introspection
    )
    problems.install(app)
    # every operation's problem answers; discovery and JWKS are answered before the limits
    openapi.install(app, early={wellknown.DISCOVERY_PATH, wellknown.JWKS_PATH})
    app.add_middleware(DatabaseDeadlineMiddleware)  # innermost: 503 past the database budget
    # issue-token's endpoint, without the router; its statements keep their own deadlines
    app.add_middleware(IssueTokenShortcut)
    app.add_middleware(
        AuthFailureLimitMiddleware,
        limit=issuer.limits.auth_failures,
        authenticates=key_check(issuer.store, clock),
    )
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    app.add_middleware(HeaderLimitMiddleware, limit=settings.max_header_bytes)
    issuer_path = urlsplit(settings.issuer).path.rstrip("/")
    app.add_middleware(
        DocumentsMiddleware,
        context=app.state.context,
        prefixes={"", issuer_path},
    )
    app.add_middleware(TraceMiddleware)  # every answer, and every log line, has a trace id
    # Outermost: every request is timed and logged once, discovery and JWKS included.
    observers: list[Observer] = [AccessLog()] if settings.access_log else []
    if metrics is not None:
        answered_early = {ISSUE_PATH} | {
            f"{prefix}{path}"
            for prefix in ("", issuer_path)
            for path in (wellknown.DISCOVERY_PATH, wellknown.JWKS_PATH)
        }
        observers.append(RequestMetrics(metrics, fixed_routes=answered_early))
        app.state.metrics = metrics
        app.include_router(metrics_api.router(settings.metrics))
    if observers:
        app.add_middleware(ObserveMiddleware, observers=observers)
    if settings.trusted_proxies:
        # Outside even that: every layer, the log included, sees the client behind them.
        app.add_middleware(ClientAddressMiddleware, trusted=settings.trusted_proxies)
    modules = (
        wellknown,
        health,
        federate,
        broker,
        graphql,
        principals,
        api_keys,
        console_sessions,
        runs,
        keys,
        tokens,
        log,
    )
    for module in modules:
        app.include_router(module.router)
    app.state.route_methods = problems.route_methods(module.router for module in modules)
    if settings.api_docs:
        app.include_router(docs.router(app.title, OPENAPI_URL))
    if settings.console:
        secret = console_secret or secrets.token_bytes(32)
        sessions = console_sessions.StoreSessions(store, clock)
        app.mount(
            "/console",
            console_app(app, secret=secret, issuer=settings.issuer, sessions=sessions, clock=clock),
        )
    if issuer_path:
        # Verifiers look for discovery (and auditors for the log) under the issuer URL,
        # path included.
        app.include_router(wellknown.router, prefix=issuer_path, include_in_schema=False)
        app.include_router(log.router, prefix=issuer_path, include_in_schema=False)
    return app


__all__ = ["create_app"]
