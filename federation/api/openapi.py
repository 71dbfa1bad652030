"""The OpenAPI document at ``/openapi.json``: every problem answer of every operation.

A route declares the problems its own handler raises, beside the handler:
``@router.get(..., responses=problems(403, 404))``. What an operation answers because
of what stands in front of every route is added here, in one place, to each operation
it applies to (:func:`common_problems`):

=====  =============================================================================
 400   the operation takes parameters or a body, and they do not validate
 401   the operation authenticates (the ``HTTPBearer`` scheme)
 429   the path is guarded by the failed-authentication limit (``/api/``, ``/graphql``)
 503   the operation authenticates, and so reads the database, which may be down
 413   a routed operation: the body size limit (``FEDERATION_MAX_REQUEST_BYTES``)
 431   a routed operation: the header size limit (``FEDERATION_MAX_HEADER_BYTES``)
 500   every operation: an unexpected failure
=====  =============================================================================

Every problem is ``application/problem+json`` with the ``Problem`` schema, the body
that :meth:`federation.errors.FederationError.problem` writes. The framework's own
``422`` (``HTTPValidationError``) is dropped: a request that does not validate is a
``400`` problem (:mod:`federation.api.problems`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterator
from typing import Any

import orjson
from fastapi import FastAPI

from federation.api.middleware.auth_failures import AUTHENTICATED
from federation.api.problems import PROBLEM_JSON
from federation.errors import BY_STATUS, DOCS_PREFIX, FederationError

PROBLEM_REF = "#/components/schemas/Problem"
_EXAMPLE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
_FRAMEWORK_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = frozenset(("get", "put", "post", "delete", "options", "head", "patch", "trace"))

# Why an operation answers each status; the error class gives the code and title.
_WHY = {
    400: "The parameters or the body are invalid or missing; `detail` says which.",
    401: "No API key, or one that is malformed, unknown, expired or deleted.",
    403: "The API key lacks the scope, or the principal the permission, for this.",
    404: "There is no such resource (or none this key may see).",
    409: "The resource's state or an existing one conflicts with the request: a run "
    "that has not started yet (retryable), or a name that is taken.",
    413: "The request body is larger than the server accepts.",
    422: "The resource's state does not allow this: a finished run.",
    429: "Too many requests for an API key, run, principal or client address: retry after "
    "`Retry-After` seconds.",
    431: "The request headers are larger than the server accepts.",
    500: "An unexpected failure; the trace id finds it in the server's log.",
    503: "The database, a signing key or an upstream service is unavailable: retry "
    "after `Retry-After` seconds.",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer`: send an API key as `Authorization: Bearer wk-...`.",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
_HEADERS[503] = _HEADERS[429]


def _error_classes(root: type[FederationError] = FederationError) -> Iterator[type[Any]]:
    yield root
    for child in root.__subclasses__():
        yield from _error_classes(child)


def problem_schema() -> dict[str, Any]:
    """The JSON schema of a problem body, with every ``type`` the error tree has."""
    types = sorted({f"{DOCS_PREFIX}{kind.code.replace('_', '-')}/" for kind in _error_classes()})
    return {
        "title": "Problem",
        "description": "An RFC 9457 problem in the Oz shape; other members may follow "
        "(`upstream`: what an upstream service answered).",
        "type": "object",
        "required": ["type", "title", "status", "instance", "error", "retryable"],
        "properties": {
            "type": {
                "type": "string",
                "enum": types,
                "description": "The Oz error code, as a reference path.",
            },
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "What exactly went wrong."},
            "instance": {"type": "string", "description": "The request's path."},
            "error": {"type": "string", "description": "`title (detail)`."},
            "retryable": {"type": "boolean"},
            "trace_id": {"type": "string", "description": "Finds the request in the logs."},
            "upstream": {
                "type": "object",
                "description": "The upstream service that refused, and its error code.",
                "properties": {
                    "service": {"type": "string"},
                    "code": {"type": ["string", "null"]},
                },
            },
        },
        "additionalProperties": True,
    }


def problem_response(status: int) -> dict[str, Any]:
    """The OpenAPI response object of the problem answered with ``status``."""
    kind = BY_STATUS[status]
    response: dict[str, Any] = {
        "description": f"`{kind.code}`: {_WHY.get(status, kind.title)}",
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status in _HEADERS:
        response["headers"] = copy.deepcopy(_HEADERS[status])
    return response


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: the problems its handler may answer, beyond those
    every operation of its kind answers (:func:`common_problems`)."""
    return {status: problem_response(status) for status in statuses}


def common_problems(
    path: str, method: str, operation: dict[str, Any], early: Collection[str] = ()
) -> set[int]:
    """The problems an operation answers because of what stands in front of it;
    ``early``: paths whose GET is answered before the size limits."""
    found = {500}
    if not (method == "get" and path in early):
        found |= {413, 431}
    if operation.get("parameters") or operation.get("requestBody"):
        found.add(400)
    if operation.get("security"):
        found |= {401, 503}
    if path.startswith(AUTHENTICATED):
        found.add(429)
    return found


def complete(document: dict[str, Any], early: Collection[str] = ()) -> dict[str, Any]:
    """``document`` (the framework's) with every operation's problems, in place."""
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if _is_framework_422(responses.get("422")):
                del responses["422"]
            for common in common_problems(path, method, operation, early):
                responses.setdefault(str(common), problem_response(common))
            for code, response in responses.items():
                media = response.get("content", {}).get(PROBLEM_JSON)
                if media is not None and code.isdigit() and int(code) in BY_STATUS:
                    media.setdefault("example", _example(int(code), path))
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FRAMEWORK_SCHEMAS:
        if f'"#/components/schemas/{name}"'.encode() not in orjson.dumps(document):
            schemas.pop(name, None)
    schemas["Problem"] = problem_schema()
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def _example(status: int, path: str) -> dict[str, Any]:
    """The body of ``status``'s problem, as an answer on ``path`` would be."""
    return BY_STATUS[status]().problem(instance=path, trace_id=_EXAMPLE_TRACE)


def _is_framework_422(response: dict[str, Any] | None) -> bool:
    content = (response or {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    return bool(ref.endswith("/HTTPValidationError"))


def install(app: FastAPI, *, early: Collection[str] = ()) -> None:
    """Serve ``app``'s document completed (the framework builds it again when routes
    change, and this completes each new one once); ``early``: the paths whose GET a
    middleware answers before the size limits (discovery and JWKS)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = generate()
        if not completed or completed[0] is not document:
            completed[:] = [complete(document, early)]
        return completed[0]

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["complete", "install", "problem_response", "problem_schema", "problems"]
