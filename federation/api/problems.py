"""Every non-2xx answer is ``application/problem+json`` in the Oz shape, with every
value of a secret's shape in it replaced by ``[redacted]``
(:mod:`federation.domain.secret_shapes`): a problem may quote the path or a name the
client sent, and a misplaced key or token must not come back."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from federation.domain.secret_shapes import redact, redact_json
from federation.errors import (
    BY_STATUS,
    FederationError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    ResourceNotFound,
    ResourceUnavailable,
)
from federation.store.deadlines import RETRY_AFTER_SECONDS

log = logging.getLogger("federation.api")
PROBLEM_JSON = "application/problem+json"


def trace_id(request: Request) -> str | None:
    return getattr(request.state, "trace_id", None)


def problem_response(error: FederationError, request: Request) -> Response:
    body = redact_json(error.problem(instance=request.url.path, trace_id=trace_id(request)))
    headers = {name: redact(value) for name, value in error.headers.items()}
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    if error.status in (429, 503):
        headers.setdefault("Retry-After", "1")
    return Response(
        orjson.dumps(body), status_code=error.status, media_type=PROBLEM_JSON, headers=headers
    )


def database_unavailable(detail: str = "the database is unavailable") -> ResourceUnavailable:
    """A database that is down, frozen or unreachable: retryable, after ``Retry-After``."""
    return ResourceUnavailable(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def validation_detail(errors: Sequence[Any]) -> str:
    """Where and what, never the offending value (it may be a secret)."""
    parts = []
    for error in errors[:5]:
        # NOTE: an unknown field's name is in its location, and may be a secret too
        location = [
            redact(str(part)) for part in error.get("loc", ()) if part not in {"body", "query"}
        ]
        if error.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON")
            continue
        where = ".".join(location) or "body"
        parts.append(f"{where}: {redact(str(error.get('msg', 'is not valid')))}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "; ".join(parts)


def as_federation_error(exc: Exception, trace: str | None) -> FederationError:
    """What a client may learn of an unexpected exception; the rest goes to the log.
    Secrets in neither: every answer, GraphQL's too, renders what this returns."""
    if isinstance(exc, InternalError):
        log.error("internal error (trace %s): %s", trace, redact(exc.detail or ""))
        return InternalError()  # NOTE: the detail stays in the log
    if isinstance(exc, FederationError):
        return without_secrets(exc)
    if isinstance(exc, DataError):
        # e.g. PostgreSQL refusing a NUL byte: the request's fault, not the server's.
        return InvalidRequest("a value in the request cannot be stored or looked up")
    if isinstance(exc, SQLAlchemyError):
        log.error("database error (trace %s): %s", trace, type(exc).__name__)
        outage = isinstance(exc, OperationalError | PoolTimeout) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        )
        if outage:
            return database_unavailable()
        return InternalError()
    log.error("unhandled error (trace %s)", trace, exc_info=exc)
    return InternalError()


def without_secrets(error: FederationError) -> FederationError:
    """``error`` with any secret in its detail and extensions redacted, in place: a
    detail may name what the client sent (a run id, a team), which may be a secret."""
    if error.detail:
        error.detail = redact(error.detail)
    if error.extensions:
        extensions = redact_json(error.extensions)
        assert isinstance(extensions, dict)
        error.extensions = extensions
    return error


def route_methods(routers: Iterable[APIRouter]) -> list[tuple[re.Pattern[str], set[str]]]:
    """Path patterns and methods of every route, for ``Allow`` headers."""
    return [
        (route.path_regex, set(route.methods or ()))
        for router in routers
        for route in router.routes
        if isinstance(route, Route)
    ]


def _allowed_methods(request: Request) -> str:
    """Every method some route serves on this path (Starlette names only the first's)."""
    table: list[tuple[re.Pattern[str], set[str]]] = getattr(request.app.state, "route_methods", [])
    methods = {m for pattern, found in table if pattern.match(request.url.path) for m in found}
    return ", ".join(sorted(methods))


def error_response(exc: Exception, request: Request) -> Response:
    """What the installed handlers answer for an exception a route raised (for a route
    called without the router, as issue-token is)."""
    if isinstance(exc, RequestValidationError):
        return problem_response(InvalidRequest(validation_detail(exc.errors())), request)
    return problem_response(as_federation_error(exc, trace_id(request)), request)


def install(app: FastAPI) -> None:
    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(exc, request)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = BY_STATUS.get(exc.status_code, InternalError)
        if exc.status_code == 404:
            error: FederationError = ResourceNotFound("no such endpoint")
        elif exc.status_code == 405:
            allowed = _allowed_methods(request) or (exc.headers or {}).get("Allow", "")
            error = MethodNotAllowed(
                f"{request.method} is not supported here; allowed: {allowed}",
                headers={"Allow": allowed},
            )
        else:
            # NOTE: redacted before it is cut, so that no part of a secret survives
            error = kind(redact(str(exc.detail))[:200] if kind is not InternalError else None)
        return problem_response(error, request)

    async def unexpected(request: Request, exc: Exception) -> Response:
        return error_response(exc, request)

    app.add_exception_handler(FederationError, unexpected)
    # NOTE: an outage is answered where every other error is, inside the middlewares
    # (the access log and metrics see the 503); other database errors keep reaching the
    # server's handler, with their traceback in the log.
    app.add_exception_handler(OperationalError, unexpected)
    app.add_exception_handler(PoolTimeout, unexpected)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
