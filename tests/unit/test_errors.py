"""The error tree: codes, statuses, retryability, the Oz problem body and exit codes."""

from __future__ import annotations

import pytest

from federation import errors
from federation.errors import (
    AuthenticationRequired,
    ConfigurationError,
    Conflict,
    FederationError,
    HeadersTooLarge,
    InternalError,
    InvalidIssuerUrl,
    InvalidPolicy,
    InvalidRequest,
    IssuerUnreachable,
    LogVerificationFailed,
    MethodNotAllowed,
    NotAuthorized,
    OperationNotSupported,
    PolicyRefusal,
    PortUnavailable,
    RateLimited,
    RequestTooLarge,
    ResourceNotFound,
    ResourceUnavailable,
    VerificationFailed,
)

TABLE: list[tuple[type[FederationError], str, int, bool, int]] = [
    # class, code, status, retryable, exit status
    (InvalidRequest, "invalid_request", 400, False, 2),
    (VerificationFailed, "invalid_request", 400, False, 1),
    (LogVerificationFailed, "invalid_request", 400, False, 1),
    (PolicyRefusal, "invalid_request", 400, False, 1),
    (RequestTooLarge, "invalid_request", 413, False, 2),
    (HeadersTooLarge, "invalid_request", 431, False, 2),
    (AuthenticationRequired, "authentication_required", 401, False, 77),
    (NotAuthorized, "not_authorized", 403, False, 77),
    (ResourceNotFound, "resource_not_found", 404, False, 1),
    (MethodNotAllowed, "operation_not_supported", 405, False, 1),
    (Conflict, "conflict", 409, True, 75),
    (OperationNotSupported, "operation_not_supported", 422, False, 1),
    (RateLimited, "resource_unavailable", 429, True, 75),
    (ResourceUnavailable, "resource_unavailable", 503, True, 75),
    (IssuerUnreachable, "resource_unavailable", 503, True, 75),
    (InternalError, "internal_error", 500, True, 75),
    (ConfigurationError, "internal_error", 500, False, 78),
    (PortUnavailable, "internal_error", 500, False, 78),
    (InvalidIssuerUrl, "internal_error", 500, False, 78),
]


@pytest.mark.parametrize(("cls", "code", "status", "retryable", "exit_status"), TABLE)
def test_each_class_declares_its_wire_form(
    cls: type[FederationError], code: str, status: int, retryable: bool, exit_status: int
) -> None:
    error = cls("something")
    assert error.code == code
    assert error.status == status
    assert error.retryable is retryable
    assert error.exit_status == exit_status
    assert isinstance(error, FederationError)
    assert error.title.endswith(".")


def test_table_covers_every_error_class() -> None:
    declared = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, FederationError)
    }
    assert declared == {row[0] for row in TABLE} | {FederationError, InvalidPolicy}


def test_an_invalid_policy_is_a_usage_error_naming_the_clouds_error() -> None:
    error = InvalidPolicy("MalformedPolicyDocument", "Effect must be Allow or Deny")
    assert isinstance(error, InvalidRequest)
    assert (error.code, error.status, error.retryable, error.exit_status) == (
        "invalid_request",
        400,
        False,
        2,
    )
    assert error.detail == "MalformedPolicyDocument: Effect must be Allow or Deny"
    assert error.to_dict() == {
        "decision": "invalid",
        "error": "MalformedPolicyDocument",
        "reason": error.detail,
    }


def test_hierarchy() -> None:
    assert issubclass(VerificationFailed, InvalidRequest)
    assert issubclass(PolicyRefusal, InvalidRequest)
    assert issubclass(ConfigurationError, InternalError)


@pytest.mark.parametrize(
    ("cls", "slug"),
    [
        (InvalidRequest, "invalid-request"),
        (AuthenticationRequired, "authentication-required"),
        (NotAuthorized, "not-authorized"),
        (ResourceNotFound, "resource-not-found"),
        (MethodNotAllowed, "operation-not-supported"),
        (Conflict, "conflict"),
        (OperationNotSupported, "operation-not-supported"),
        (ResourceUnavailable, "resource-unavailable"),
        (RateLimited, "resource-unavailable"),
        (HeadersTooLarge, "invalid-request"),
        (InternalError, "internal-error"),
    ],
)
def test_problem_type_is_the_oz_docs_path(cls: type[FederationError], slug: str) -> None:
    body = cls().problem(instance="/api/v1/x", trace_id=None)
    assert body["type"] == f"/reference/api-and-sdk/troubleshooting/errors/{slug}/"


def test_problem_with_detail() -> None:
    error = ResourceNotFound("run r1 not found")
    body = error.problem(instance="/api/v1/runs/r1", trace_id="abc123")
    assert body == {
        "type": "/reference/api-and-sdk/troubleshooting/errors/resource-not-found/",
        "title": "The requested resource was not found.",
        "status": 404,
        "detail": "run r1 not found",
        "instance": "/api/v1/runs/r1",
        "error": "The requested resource was not found. (run r1 not found)",
        "retryable": False,
        "trace_id": "abc123",
    }


def test_problem_without_detail_has_no_detail_member() -> None:
    error = AuthenticationRequired()
    body = error.problem(instance="/api/v1/whoami", trace_id="t1")
    assert "detail" not in body
    assert body["error"] == AuthenticationRequired.title
    assert body["status"] == 401
    assert body["retryable"] is False
    assert body["trace_id"] == "t1"
    assert body["instance"] == "/api/v1/whoami"


def test_empty_detail_is_no_detail() -> None:
    error = InvalidRequest("")
    assert "detail" not in error.problem(instance="/", trace_id=None)
    assert error.message == InvalidRequest.title


def test_message_is_title_and_detail() -> None:
    error = Conflict("run r1 is QUEUED")
    assert error.message == f"{Conflict.title} (run r1 is QUEUED)"
    assert str(error) == "run r1 is QUEUED"
    assert str(Conflict()) == Conflict.title


@pytest.mark.parametrize(
    ("cls", "status", "retryable", "exit_status"),
    [
        (Conflict, 409, False, 1),
        (InvalidRequest, 400, True, 75),
        (ResourceUnavailable, 503, False, 1),
        (ConfigurationError, 500, True, 75),
    ],
)
def test_retryable_may_be_overridden_per_instance(
    cls: type[FederationError], status: int, retryable: bool, exit_status: int
) -> None:
    error = cls("x", retryable=retryable)
    assert error.retryable is retryable
    assert error.exit_status == exit_status
    body = error.problem(instance="/", trace_id=None)
    assert body["retryable"] is retryable
    assert body["status"] == status
    # The class default is untouched.
    assert cls("y").retryable is cls.default_retryable


def test_rate_limited_says_when_to_retry_in_whole_seconds() -> None:
    assert RateLimited("slow down", retry_after=0.2).headers == {"Retry-After": "1"}
    assert RateLimited(retry_after=59.01).headers == {"Retry-After": "60"}
    assert RateLimited().headers == {"Retry-After": "1"}
    # The CLI rebuilds it from a problem body, with the body's retryable.
    assert RateLimited("x", retryable=False).retryable is False


@pytest.mark.parametrize(
    ("status", "cls"),
    [(429, RateLimited), (503, ResourceUnavailable), (431, HeadersTooLarge), (400, InvalidRequest)],
)
def test_problems_map_back_by_status_and_code(status: int, cls: type[FederationError]) -> None:
    assert errors.for_problem(cls.code, status) is cls
    assert errors.BY_STATUS[status] is cls


def test_headers_are_kept_per_instance() -> None:
    error = ResourceUnavailable("busy", headers={"Retry-After": "5"})
    assert error.headers == {"Retry-After": "5"}
    assert ResourceUnavailable("busy").headers == {}


def test_base_error_is_an_internal_error() -> None:
    error = FederationError()
    assert (error.code, error.status, error.retryable) == ("internal_error", 500, True)
    assert error.exit_status == 75
