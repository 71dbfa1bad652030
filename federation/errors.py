"""The one error tree of the project.

Every failure a user can see is a :class:`FederationError`. Each class declares, once,
its Oz error code, title, HTTP status, whether a retry may succeed, and the exit code
the CLI uses. The HTTP layer renders them as ``application/problem+json`` and the CLI
prints ``title (detail)`` on stderr; neither knows about individual errors.

    FederationError
    ├── InvalidRequest           400 invalid_request
    │   ├── RequestTooLarge      413 invalid_request
    │   ├── HeadersTooLarge      431 invalid_request
    │   ├── VerificationFailed   a token failed `federation verify`
    │   │   └── LogVerificationFailed  the transparency log or a proof did not verify
    │   ├── PolicyRefusal        a policy given to issue-token would refuse the token
    │   └── InvalidPolicy        a policy the cloud would refuse to save (exit 2)
    ├── AuthenticationRequired   401 authentication_required
    ├── NotAuthorized            403 not_authorized
    ├── ResourceNotFound         404 resource_not_found
    ├── MethodNotAllowed         405 operation_not_supported
    ├── Conflict                 409 conflict                   (retryable)
    ├── OperationNotSupported    422 operation_not_supported
    ├── RateLimited              429 resource_unavailable       (retryable, Retry-After)
    ├── ResourceUnavailable      503 resource_unavailable       (retryable)
    │   └── IssuerUnreachable    the CLI found no issuer at its URL
    └── InternalError            500 internal_error             (retryable)
        └── ConfigurationError   a setting, key file or database stops start-up
            ├── PortUnavailable  the port to listen on is in use (or forbidden)
            └── InvalidIssuerUrl the CLI's issuer URL is unusable, or no issuer's

Details must never contain a secret: they are shown to clients and written to logs.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

DOCS_PREFIX = "/reference/api-and-sdk/troubleshooting/errors/"

# Exit codes of the CLI (sysexits.h where one fits).
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75
EXIT_NOPERM = 77
EXIT_CONFIG = 78


class FederationError(Exception):
    """Base of every error this project reports to a user."""

    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = (
        "An unexpected error occurred. Please try again later. "
        "If the issue persists, contact support."
    )
    status: ClassVar[int] = 500
    default_retryable: ClassVar[bool] = True
    exit_code: ClassVar[int] = EXIT_FAILURE

    def __init__(
        self,
        detail: str | None = None,
        *,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.retryable = self.default_retryable if retryable is None else retryable
        self.headers = headers or {}
        # Extra members of the problem body, such as what an upstream service answered.
        self.extensions = extensions or {}

    @property
    def message(self) -> str:
        """``title (detail)``, the form of the Oz ``error`` field and of CLI messages."""
        return f"{self.title} ({self.detail})" if self.detail else self.title

    @property
    def exit_status(self) -> int:
        """The CLI's exit code: 75 (try again later) for anything retryable."""
        return EXIT_TEMPFAIL if self.retryable else self.exit_code

    def problem(self, *, instance: str, trace_id: str | None) -> dict[str, Any]:
        """The RFC 7807 body in the Oz shape."""
        body: dict[str, Any] = {
            "type": f"{DOCS_PREFIX}{self.code.replace('_', '-')}/",
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        body["instance"] = instance
        body["error"] = self.message
        body["retryable"] = self.retryable
        if trace_id:
            body["trace_id"] = trace_id
        return {**self.extensions, **body}


class InvalidRequest(FederationError):
    code = "invalid_request"
    title = "The request contains invalid or missing parameters."
    status = 400
    default_retryable = False
    exit_code = EXIT_USAGE


class RequestTooLarge(InvalidRequest):
    title = "The request is too large."
    status = 413


class HeadersTooLarge(InvalidRequest):
    title = "The request headers are too large."
    status = 431


class VerificationFailed(InvalidRequest):
    title = "The token did not verify."
    exit_code = EXIT_FAILURE


class LogVerificationFailed(VerificationFailed):
    """A signed checkpoint, tile, entry or proof of the transparency log did not verify:
    the log was rewritten or forked, or the data is not what its key signed. Exits 1,
    so that a monitor run from cron or CI fails."""

    title = "The transparency log did not verify."


class PolicyRefusal(InvalidRequest):
    """The trust policy or provider a user asked `issue-token` to check against would
    refuse the token, so none was issued. Exits 1, as a `policy test` deny does."""

    title = "The policy you gave would refuse this token, so none was issued."
    exit_code = EXIT_FAILURE


class InvalidPolicy(InvalidRequest):
    """The cloud would refuse to save the policy, so there is nothing to evaluate.

    Not a denial: the CLI exits 2 (invalid policy or usage), 1 being kept for "the
    cloud would refuse the token", so a CI gate can tell the two apart. ``cloud_error``
    is the cloud's own name for the refusal (``MalformedPolicyDocument``,
    ``INVALID_ARGUMENT``, Entra's message)."""

    title = "The cloud would refuse to save this policy."

    def __init__(self, cloud_error: str, problem: str) -> None:
        super().__init__(f"{cloud_error.rstrip('.')}: {problem}")
        self.cloud_error = cloud_error
        self.fault = problem  # NOTE: not `problem`, FederationError's problem-body method

    def to_dict(self) -> dict[str, Any]:
        """What ``--output json`` prints in place of an evaluation."""
        return {"decision": "invalid", "error": self.cloud_error, "reason": self.detail}


class AuthenticationRequired(FederationError):
    code = "authentication_required"
    title = "Your API key is invalid or has expired. Please generate a new key and try again."
    status = 401
    default_retryable = False
    exit_code = EXIT_NOPERM


class NotAuthorized(FederationError):
    code = "not_authorized"
    title = "You do not have permission for this operation."
    status = 403
    default_retryable = False
    exit_code = EXIT_NOPERM


class ResourceNotFound(FederationError):
    code = "resource_not_found"
    title = "The requested resource was not found."
    status = 404
    default_retryable = False


class MethodNotAllowed(FederationError):
    code = "operation_not_supported"
    title = "The requested operation is not supported for this resource or its current state."
    status = 405
    default_retryable = False


class Conflict(FederationError):
    code = "conflict"
    title = "The request conflicts with the current state of the resource."
    status = 409
    default_retryable = True


class OperationNotSupported(FederationError):
    code = "operation_not_supported"
    title = "The requested operation is not supported for this resource or its current state."
    status = 422
    default_retryable = False


class ResourceUnavailable(FederationError):
    code = "resource_unavailable"
    title = "The service is temporarily unavailable. Please try again later."
    status = 503
    default_retryable = True


class IssuerUnreachable(ResourceUnavailable):
    """The CLI found nothing answering at the issuer's URL (the detail says which URL,
    and which flag or variable gave it)."""

    title = "Cannot reach the issuer."


class RateLimited(FederationError):
    """Too many requests: ``Retry-After`` says, in whole seconds, when one may succeed."""

    code = "resource_unavailable"
    title = ResourceUnavailable.title
    status = 429
    default_retryable = True

    def __init__(
        self, detail: str | None = None, *, retry_after: float = 1.0, retryable: bool | None = None
    ) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(detail, retryable=retryable, headers={"Retry-After": str(seconds)})
        self.retry_after = seconds


class InternalError(FederationError):
    """An unexpected failure; the detail stays in the server log, never in the answer."""


class ConfigurationError(InternalError):
    """A setting, key file or database that stops the service from starting."""

    title = "The issuer is not configured correctly."
    default_retryable = False
    exit_code = EXIT_CONFIG


class PortUnavailable(ConfigurationError):
    """A server (``serve``, a stand-in) cannot have the port it was given: something
    listens there already, another issuer among others, or the address is not this
    host's or not this user's to take."""

    title = "The server cannot listen on the port it was given."


class InvalidIssuerUrl(ConfigurationError):
    """The issuer URL the CLI was given is not one it can use (not http(s), plain http
    to another host with an API key), or what answers there is not an issuer."""

    title = "Invalid issuer URL."


# Which class answers for an HTTP status, and for an Oz code: the API maps framework
# errors with the first, the CLI turns problem bodies back into classes with the second.
_CANONICAL: tuple[type[FederationError], ...] = (
    InvalidRequest,
    AuthenticationRequired,
    NotAuthorized,
    ResourceNotFound,
    Conflict,
    OperationNotSupported,
    ResourceUnavailable,
    InternalError,
)
_EXTRA: tuple[type[FederationError], ...] = (
    RequestTooLarge,
    HeadersTooLarge,
    MethodNotAllowed,
    RateLimited,
)
BY_STATUS: dict[int, type[FederationError]] = {cls.status: cls for cls in _CANONICAL + _EXTRA}
BY_CODE: dict[str, type[FederationError]] = {cls.code: cls for cls in _CANONICAL}


def for_problem(code: str, status: int) -> type[FederationError]:
    """The class of a problem answer: by status when it has the code, else by code."""
    by_status = BY_STATUS.get(status)
    if by_status is not None and by_status.code == code:
        return by_status
    return BY_CODE.get(code, InternalError)
