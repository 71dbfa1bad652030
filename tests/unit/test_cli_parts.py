"""CLI pieces: greedy option expansion, and the HTTP client's mapping of problems."""

from __future__ import annotations

import json
from typing import Any

import click
import httpx
import pytest

from federation.cli.common import expand_greedy
from federation.client import ApiClient, error_from_response
from federation.errors import (
    AuthenticationRequired,
    Conflict,
    FederationError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotAuthorized,
    OperationNotSupported,
    RateLimited,
    ResourceNotFound,
    ResourceUnavailable,
)

GREEDY = ("--subject-template",)
API_KEY = "wk-" + "S" * 39 + "cret"

# ---- expand_greedy --------------------------------------------------------------------


def test_greedy_option_takes_several_values() -> None:
    args = ["--subject-template", "teams", "environment", "--duration", "1h"]
    assert expand_greedy(args, GREEDY) == [
        "--subject-template",
        "teams",
        "--subject-template",
        "environment",
        "--duration",
        "1h",
    ]


def test_greedy_option_at_the_end_and_repeated() -> None:
    args = ["--audience", "a", "--subject-template", "teams", "--subject-template", "host"]
    assert expand_greedy(args, GREEDY) == args


def test_greedy_option_stops_at_the_next_option() -> None:
    args = ["--subject-template", "teams", "-o", "json"]
    assert expand_greedy(args, GREEDY) == ["--subject-template", "teams", "-o", "json"]


@pytest.mark.parametrize(
    "args",
    [
        ["--subject-template"],
        ["--subject-template", "--duration", "1h"],
        ["--audience", "a", "--subject-template", "-o", "json"],
    ],
)
def test_greedy_option_without_values_is_a_usage_error(args: list[str]) -> None:
    with pytest.raises(click.UsageError, match="--subject-template"):
        expand_greedy(args, GREEDY)


def test_double_dash_stops_expansion() -> None:
    args = ["--subject-template", "teams", "--", "--subject-template", "a", "b"]
    assert expand_greedy(args, GREEDY) == [
        "--subject-template",
        "teams",
        "--",
        "--subject-template",
        "a",
        "b",
    ]


def test_equals_form_passes_through() -> None:
    args = ["--subject-template=teams", "environment", "--duration", "1h"]
    assert expand_greedy(args, GREEDY) == args


def test_other_options_are_untouched() -> None:
    args = ["--audience", "sts.amazonaws.com", "positional", "--duration", "15m"]
    assert expand_greedy(args, GREEDY) == args
    assert expand_greedy([], GREEDY) == []


# ---- error_from_response --------------------------------------------------------------


def problem(code: str, status: int, detail: str | None, retryable: bool, **extra: Any) -> Any:
    body: dict[str, Any] = {
        "type": f"/reference/api-and-sdk/troubleshooting/errors/{code.replace('_', '-')}/",
        "title": "whatever the server says",
        "status": status,
        "instance": "/api/v1/x",
        "retryable": retryable,
        "trace_id": "trace-1",
        **extra,
    }
    if detail is not None:
        body["detail"] = detail
    return body


def response(status: int, body: Any = None, content: bytes | None = None) -> httpx.Response:
    if content is not None:
        return httpx.Response(status, content=content)
    return httpx.Response(
        status, content=json.dumps(body), headers={"Content-Type": "application/problem+json"}
    )


@pytest.mark.parametrize(
    ("cls", "code", "status", "retryable"),
    [
        (InvalidRequest, "invalid_request", 400, False),
        (AuthenticationRequired, "authentication_required", 401, False),
        (NotAuthorized, "not_authorized", 403, False),
        (ResourceNotFound, "resource_not_found", 404, False),
        (Conflict, "conflict", 409, True),
        (Conflict, "conflict", 409, False),
        (OperationNotSupported, "operation_not_supported", 422, False),
        (RateLimited, "resource_unavailable", 429, True),
        (ResourceUnavailable, "resource_unavailable", 503, True),
    ],
)
def test_problem_becomes_the_matching_error(
    cls: type[FederationError], code: str, status: int, retryable: bool
) -> None:
    error = error_from_response(response(status, problem(code, status, "the detail", retryable)))
    assert type(error) is cls
    assert error.detail == "the detail"
    assert error.retryable is retryable
    assert error.message == f"{cls.title} (the detail)"


def test_problem_without_detail() -> None:
    error = error_from_response(response(401, problem("authentication_required", 401, None, False)))
    assert type(error) is AuthenticationRequired
    assert error.detail is None
    assert error.message == AuthenticationRequired.title


def test_missing_retryable_takes_the_class_default() -> None:
    body = problem("conflict", 409, "queued", True)
    del body["retryable"]
    assert error_from_response(response(409, body)).retryable is True


def test_405_is_method_not_allowed() -> None:
    body = problem("operation_not_supported", 405, "use POST", False)
    error = error_from_response(response(405, body))
    assert type(error) is MethodNotAllowed
    assert error.detail == "use POST"
    assert error.status == 405


def test_internal_error_shows_the_trace_id_only() -> None:
    body = problem("internal_error", 500, "stack: secret path", True, trace_id="tr-42")
    error = error_from_response(response(500, body))
    assert type(error) is InternalError
    assert error.detail == "trace id tr-42"


def test_unknown_problem_code_is_an_internal_error() -> None:
    error = error_from_response(response(418, problem("teapot_error", 418, "short", False)))
    assert type(error) is InternalError


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_non_problem_server_error_is_unavailable(status: int) -> None:
    error = error_from_response(response(status, content=b"<html>Bad Gateway</html>"))
    assert type(error) is ResourceUnavailable
    assert error.retryable is True
    assert error.detail is not None
    assert str(status) in error.detail


def test_json_without_problem_type_is_not_a_problem() -> None:
    error = error_from_response(response(502, {"message": "upstream"}))
    assert type(error) is ResourceUnavailable


# ---- ApiClient ------------------------------------------------------------------------


def client_for(handler: Any, base_url: str = "http://127.0.0.1:8080/") -> ApiClient:
    return ApiClient(base_url, API_KEY, transport=httpx.MockTransport(handler))


def test_request_sends_the_key_and_returns_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    with client_for(handler) as client:
        result = client.request("GET", "/api/v1/whoami", params={"limit": 5, "cursor": None})
    assert result == {"ok": True}
    [request] = seen
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["User-Agent"].startswith("federation-cli/")
    assert str(request.url) == "http://127.0.0.1:8080/api/v1/whoami?limit=5"


def test_no_content_is_none() -> None:
    with client_for(lambda request: httpx.Response(204)) as client:
        assert client.request("DELETE", "/api/v1/api-keys/ak_1") is None


def test_problem_answer_raises_the_matching_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return response(409, problem("conflict", 409, "run r1 is QUEUED", True))

    with client_for(handler) as client, pytest.raises(Conflict) as raised:
        client.request("POST", "/api/v1/federate/issue-token", json={"run_id": "r1"})
    assert raised.value.detail == "run r1 is QUEUED"
    assert raised.value.retryable is True


def test_405_answer_raises_method_not_allowed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return response(405, problem("operation_not_supported", 405, None, False))

    with client_for(handler) as client, pytest.raises(MethodNotAllowed):
        client.request("PUT", "/api/v1/runs")


def test_non_problem_502_raises_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="Bad Gateway")

    with client_for(handler) as client, pytest.raises(ResourceUnavailable):
        client.request("GET", "/api/v1/whoami")


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError("refused"), httpx.ReadError("reset"), httpx.ConnectTimeout("t")]
)
def test_connection_failure_names_the_url_but_not_the_key(failure: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with (
        client_for(handler, "http://127.0.0.1:9/") as client,
        pytest.raises(ResourceUnavailable) as raised,
    ):
        client.request("GET", "/api/v1/whoami")
    error = raised.value
    assert error.retryable is True
    assert error.exit_status == 75
    assert error.detail is not None
    assert "http://127.0.0.1:9" in error.detail
    for text in (error.message, str(error), repr(error)):
        assert API_KEY not in text
