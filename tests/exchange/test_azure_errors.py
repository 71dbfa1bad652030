"""The Azure helpers without a server: the request authlib sends, the assertion callback,
and how each answer of Entra's token endpoint becomes an error (``httpx2.MockTransport``
plays Entra; a fake token source plays the issuer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import pytest

from federation.clock import ManualClock
from federation.domain.tokens import ENTRA_AUDIENCE
from federation.errors import (
    FederationError,
    InvalidRequest,
    NotAuthorized,
    ResourceUnavailable,
)
from federation.exchange.azure import (
    ASSERTION_TYPE,
    assertion_callback,
    client_credentials_token,
    token_endpoint,
)
from federation.exchange.source import AccessToken, MintedToken
from tests.exchange.azure_helpers import CLIENT, SCOPE, TENANT, upstream

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ISSUER = "https://issuer.example.com"
SUBJECT = "user:u1"


@dataclass
class FakeSource:
    """A TokenSource that records what it was asked for."""

    asked: list[dict[str, Any]] = field(default_factory=list)
    refuse: FederationError | None = None

    @property
    def run_id(self) -> str:
        return "r1"

    def mint(
        self,
        audience: str,
        *,
        duration: str | None = None,
        subject_template: Sequence[str] | None = None,
        aws_session_tags: Sequence[str] | None = None,
        algorithm: str | None = None,
    ) -> MintedToken:
        if self.refuse is not None:
            raise self.refuse
        self.asked.append(
            {
                "audience": audience,
                "duration": duration,
                "subject_template": subject_template,
                "algorithm": algorithm,
            }
        )
        return MintedToken(
            token=f"eyJhbGciOiJSUzI1NiJ9.assertion-{len(self.asked)}.signature",
            issued_at=NOW,
            expires_at=NOW + timedelta(minutes=10),
            subject=SUBJECT,
            issuer=ISSUER,
        )


Handler = Callable[[httpx2.Request], httpx2.Response]


def entra_says(status: int, body: dict[str, Any] | str) -> Handler:
    def handler(_: httpx2.Request) -> httpx2.Response:
        if isinstance(body, str):
            return httpx2.Response(status, text=body, headers={"Content-Type": "text/html"})
        return httpx2.Response(status, json=body)

    return handler


def entra_error(error: str, code: int, message: str, status: int = 400) -> Handler:
    return entra_says(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {message} Trace ID: t Correlation ID: c",
            "error_codes": [code],
            "correlation_id": "c0ffee",
        },
    )


def exchange(handler: Handler, source: FakeSource | None = None, **options: Any) -> AccessToken:
    return client_credentials_token(
        source or FakeSource(),
        tenant_id=TENANT,
        client_id=CLIENT,
        scope=options.pop("scope", SCOPE),
        authority=options.pop("authority", "https://login.example.com"),
        http=httpx2.MockTransport(handler),
        clock=ManualClock(NOW),
        **options,
    )


def test_the_request_is_client_credentials_with_our_assertion() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(
            200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "at-1"}
        )

    source = FakeSource()
    token = exchange(handler, source, subject_template=("teams", "environment"))
    assert token == AccessToken("at-1", NOW + timedelta(seconds=3599), "Bearer")
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"https://login.example.com/{TENANT}/oauth2/v2.0/token"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert "Authorization" not in request.headers
    form = dict(parse_qsl(request.content.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT,
        "scope": SCOPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": "eyJhbGciOiJSUzI1NiJ9.assertion-1.signature",
    }
    assert source.asked == [
        {
            "audience": ENTRA_AUDIENCE,
            "duration": "10m",
            "subject_template": ("teams", "environment"),
            "algorithm": "RS256",
        }
    ]


def test_the_callback_mints_on_every_call() -> None:
    source = FakeSource()
    callback = assertion_callback(source, subject_template=["principal"])
    assert source.asked == []  # nothing minted until azure-identity asks
    assertions = [callback(), callback(), callback()]
    assert len(set(assertions)) == 3
    assert {entry["algorithm"] for entry in source.asked} == {"RS256"}
    assert {entry["audience"] for entry in source.asked} == {ENTRA_AUDIENCE}
    assert {entry["subject_template"] for entry in source.asked} == {("principal",)}


def test_an_issuer_refusal_passes_through_unchanged() -> None:
    refused = NotAuthorized("the workload token is not that of run r1")
    with pytest.raises(NotAuthorized) as caught:
        exchange(entra_says(500, "unused"), FakeSource(refuse=refused))
    assert caught.value is refused
    with pytest.raises(NotAuthorized):
        assertion_callback(FakeSource(refuse=refused))()


@pytest.mark.parametrize(
    ("answer", "kind", "aadsts", "says"),
    [
        (
            entra_error("invalid_client", 7002138, "No matching ... subject 'User:u1'."),
            NotAuthorized,
            7002138,
            ["the subject we sent, 'user:u1'", "case-sensitive"],
        ),
        (
            entra_error("invalid_client", 700027, "Client assertion failed signature validation."),
            NotAuthorized,
            700027,
            [f"{ISSUER}/.well-known/openid-configuration", "RS256"],
        ),
        (
            entra_error("invalid_request", 50166, "Request to External OIDC endpoint failed."),
            ResourceUnavailable,
            50166,
            [ISSUER, "reachable from the internet over https"],
        ),
        (
            entra_error("unauthorized_client", 700016, "Application with identifier ..."),
            InvalidRequest,
            700016,
            [CLIENT, TENANT, "--client-id"],
        ),
        (
            entra_error("invalid_client", 9999999, "Something new went wrong.", status=401),
            NotAuthorized,
            9999999,
            ["(AADSTS9999999): Something new went wrong."],
        ),
        (
            entra_error("temporarily_unavailable", 90033, "Busy.", status=429),
            ResourceUnavailable,
            90033,
            ["Entra is unavailable (AADSTS90033): Busy."],
        ),
    ],
)
def test_what_entra_answered_and_what_to_check(
    answer: Handler, kind: type[FederationError], aadsts: int, says: list[str]
) -> None:
    with pytest.raises(kind) as caught:
        exchange(answer)
    assert type(caught.value) is kind
    found = upstream(caught.value)
    assert found["aadsts"] == aadsts
    assert caught.value.extensions["upstream"]["correlation_id"] == "c0ffee"
    for text in says:
        assert text in caught.value.message
    assert "Trace ID" not in caught.value.message


def test_the_problem_body_carries_the_upstream_answer() -> None:
    with pytest.raises(NotAuthorized) as caught:
        exchange(entra_error("invalid_client", 700211, "No matching ... issuer."))
    body = caught.value.problem(instance="/x", trace_id=None)
    assert body["upstream"]["aadsts"] == 700211
    assert body["upstream"]["code"] == "invalid_client"
    assert body["status"] == 403


def test_a_code_only_in_the_description() -> None:
    answer = entra_says(
        401, {"error": "invalid_client", "error_description": "AADSTS700211: No match."}
    )
    with pytest.raises(NotAuthorized) as caught:
        exchange(answer)
    assert upstream(caught.value)["aadsts"] == 700211


def test_the_assertion_never_appears_in_an_error() -> None:
    echoed = "eyJhbGciOiJSUzI1NiJ9.assertion-1.signature"
    answer = entra_says(
        400, {"error": "invalid_request", "error_description": f"Bad assertion {echoed}."}
    )
    with pytest.raises(InvalidRequest) as caught:
        exchange(answer)
    assert echoed not in caught.value.message
    assert "Bad assertion [assertion]." in caught.value.message


@pytest.mark.parametrize(
    ("answer", "kind", "says"),
    [
        (entra_says(502, "<html>bad gateway</html>"), ResourceUnavailable, "HTTP 502"),
        (entra_says(404, "<html>not found</html>"), InvalidRequest, "check --authority"),
        (entra_says(200, "<html>a portal</html>"), ResourceUnavailable, "check --authority"),
        (entra_says(200, {"token_type": "Bearer"}), ResourceUnavailable, "without an access token"),
        (entra_says(200, {"access_token": "at"}), ResourceUnavailable, "without expires_in"),
    ],
)
def test_answers_that_are_not_entras(
    answer: Handler, kind: type[FederationError], says: str
) -> None:
    with pytest.raises(kind) as caught:
        exchange(answer)
    assert type(caught.value) is kind
    assert says in caught.value.message
    assert upstream(caught.value)["aadsts"] is None


@pytest.mark.parametrize(
    ("authority", "says"),
    [
        ("http://login.example.com", "must be an https URL"),
        ("https://login.example.com/?x=1", "is not a URL"),
        ("ftp://login.example.com", "must be an https URL"),
    ],
)
def test_an_unsafe_authority_is_refused_before_minting(authority: str, says: str) -> None:
    source = FakeSource()
    with pytest.raises(InvalidRequest, match=says):
        exchange(entra_says(500, "unused"), source, authority=authority)
    assert source.asked == []


def test_authorities_as_azure_identity_takes_them() -> None:
    assert token_endpoint("login.microsoftonline.com", TENANT) == (
        f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    )
    assert token_endpoint("https://login.microsoftonline.us/", "contoso.onmicrosoft.com") == (
        "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert token_endpoint("http://127.0.0.1:8443", TENANT).startswith("http://127.0.0.1:8443/")


@pytest.mark.parametrize("tenant", ["", "../admin", "a/b", "contoso?x=1", "x" * 300])
def test_a_tenant_that_is_not_one(tenant: str) -> None:
    with pytest.raises(InvalidRequest, match="tenant id"):
        token_endpoint("https://login.microsoftonline.com", tenant)
