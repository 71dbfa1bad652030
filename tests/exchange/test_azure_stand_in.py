"""The Entra stand-in on its own: tokens signed here with PyJWT by a small issuer on
loopback, so that every way Entra refuses an assertion can be provoked, and each answer
checked for Entra's shape."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from federation.domain.tokens import ENTRA_AUDIENCE
from federation.stand_ins.entra import EntraStandIn, FederatedCredential, entra_app
from federation.stand_ins.serving import serve
from tests.exchange.azure_helpers import CLIENT, SCOPE, TENANT, running_entra
from tests.support import free_port

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SUBJECT = "repo:acme/app:environment:prod"


@dataclass
class Issuer:
    """An OIDC issuer on loopback with one RS256 and one ES256 key."""

    url: str
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey

    def sign(self, key: Any = None, *, alg: str = "RS256", kid: str = "rsa", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.url,
            "sub": SUBJECT,
            "aud": ENTRA_AUDIENCE,
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + 300,
            "jti": f"j{time.monotonic_ns()}",
            **claims,
        }
        return jwt.encode(body, key or self.rsa_key, algorithm=alg, headers={"kid": kid})

    def credential(self, **changes: str) -> FederatedCredential:
        fields = {"client_id": CLIENT, "issuer": self.url, "subject": SUBJECT}
        return FederatedCredential(**{**fields, **changes})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = [
        {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "rsa", "alg": "RS256"},
        {**ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "ec", "alg": "ES256"},
    ]

    async def discovery(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"issuer": base, "jwks_uri": f"{base}/jwks"})

    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse({"keys": keys})

    app = Starlette(
        routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks)]
    )
    with serve(app) as url:
        yield Issuer(url=url, rsa_key=rsa_key, ec_key=ec_key)


def form(assertion: str, **changes: str) -> dict[str, str]:
    fields = {
        "grant_type": "client_credentials",
        "client_id": CLIENT,
        "scope": SCOPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return {name: value for name, value in {**fields, **changes}.items() if value}


def post(
    credential: FederatedCredential, data: dict[str, str], tenant: str = TENANT
) -> httpx.Response:
    with running_entra(credential) as entra:
        return httpx.post(f"{entra.url}/{tenant}/oauth2/v2.0/token", data=data, timeout=10)


def refused(response: httpx.Response, status: int, error: str, code: int) -> str:
    """Entra's error shape; returns the description after ``AADSTS<code>: ``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert f"Correlation ID: {body['correlation_id']}" in body["error_description"]
    assert body["trace_id"]
    description: str = body["error_description"]
    return description.removeprefix(f"AADSTS{code}: ")


@pytest.mark.parametrize("audience", [ENTRA_AUDIENCE, [ENTRA_AUDIENCE]])
def test_a_good_assertion_gets_an_access_token(issuer: Issuer, audience: Any) -> None:
    assertion = issuer.sign(aud=audience)
    with running_entra(issuer.credential()) as entra:
        response = httpx.post(
            f"{entra.url}/{TENANT.upper()}/oauth2/v2.0/token", data=form(assertion), timeout=10
        )
        (grant,) = entra.entra.grants
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["access_token"] == grant.access_token
    assert response.headers["Cache-Control"] == "no-store"
    assert grant.assertion_jwt == assertion
    assert grant.assertion.claims["sub"] == SUBJECT


def test_only_rs256(issuer: Issuer) -> None:
    assertion = issuer.sign(issuer.ec_key, alg="ES256", kid="ec")
    text = refused(post(issuer.credential(), form(assertion)), 400, "invalid_request", 5002738)
    assert "RS256" in text


def test_a_signature_by_another_key(issuer: Issuer) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assertion = issuer.sign(stranger)
    refused(post(issuer.credential(), form(assertion)), 401, "invalid_client", 700027)


@pytest.mark.parametrize(
    "times",
    [
        {"iat": 1_000_000, "nbf": 1_000_000, "exp": 1_000_300},
        {"nbf": 4_000_000_000, "iat": 4_000_000_000, "exp": 4_000_000_300},
    ],
)
def test_outside_its_time_range(issuer: Issuer, times: dict[str, Any]) -> None:
    assertion = issuer.sign(**times)
    text = refused(post(issuer.credential(), form(assertion)), 401, "invalid_client", 700024)
    assert text.startswith("Client assertion is not within its valid time range.")


@pytest.mark.parametrize(
    ("credential", "code", "shows"),
    [
        ({"issuer": "{url}/"}, 700211, "issuer '{url}'"),
        ({"subject": SUBJECT.upper()}, 700213, f"subject '{SUBJECT}'"),
        ({"subject": SUBJECT + " "}, 700213, f"subject '{SUBJECT}'"),
        ({"audience": "api://AzureADTokenExchangeChina"}, 700212, f"audience '{ENTRA_AUDIENCE}'"),
        ({"client_id": "another-app"}, 70021, f"Assertion Subject: '{SUBJECT}'"),
    ],
)
def test_exact_matching_of_the_federated_credential(
    issuer: Issuer, credential: dict[str, str], code: int, shows: str
) -> None:
    changes = {name: value.format(url=issuer.url) for name, value in credential.items()}
    response = post(issuer.credential(**changes), form(issuer.sign()))
    text = refused(response, 401, "invalid_client", code)
    assert shows.format(url=issuer.url) in text


def test_an_issuer_entra_cannot_reach(issuer: Issuer) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    response = post(issuer.credential(issuer=gone), form(issuer.sign(iss=gone)))
    refused(response, 400, "invalid_request", 50166)


@pytest.mark.parametrize(
    ("changes", "status", "error", "code"),
    [
        ({"client_assertion": "not-a-jwt"}, 400, "invalid_request", 50027),
        ({"client_assertion": ""}, 401, "invalid_client", 7000218),
        ({"client_assertion_type": "urn:other"}, 401, "invalid_client", 7000218),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"scope": ""}, 400, "invalid_request", 900144),
        ({"client_id": ""}, 400, "invalid_request", 900144),
        ({"scope": "https://graph.microsoft.com/User.Read"}, 400, "invalid_scope", 1002012),
    ],
)
def test_malformed_requests(
    issuer: Issuer, changes: dict[str, str], status: int, error: str, code: int
) -> None:
    response = post(issuer.credential(), form(issuer.sign(), **changes))
    refused(response, status, error, code)


def test_another_tenant(issuer: Issuer) -> None:
    response = post(issuer.credential(), form(issuer.sign()), tenant="contoso.onmicrosoft.com")
    assert "'contoso.onmicrosoft.com' not found" in refused(response, 400, "invalid_request", 90002)


def test_a_body_too_large(issuer: Issuer) -> None:
    response = post(issuer.credential(), form(issuer.sign(), padding="x" * 70_000))
    refused(response, 400, "invalid_request", 90015)


def test_discovery_documents_for_msal() -> None:
    with running_entra() as entra, httpx.Client(base_url=entra.url, timeout=10) as http:
        document = http.get(f"/{TENANT}/v2.0/.well-known/openid-configuration").json()
        instance = http.get(
            "/common/discovery/instance",
            params={"api-version": "1.1", "authorization_endpoint": "x"},
        ).json()
        unknown = http.get("/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration")
        keys = http.get(f"/{TENANT}/discovery/v2.0/keys").json()
    assert document["token_endpoint"] == f"{entra.url}/{TENANT}/oauth2/v2.0/token"
    assert document["authorization_endpoint"] == f"{entra.url}/{TENANT}/oauth2/v2.0/authorize"
    assert document["issuer"] == f"{entra.url}/{TENANT}/v2.0"
    assert instance["tenant_discovery_endpoint"] == (
        f"{entra.url}/{TENANT}/v2.0/.well-known/openid-configuration"
    )
    assert instance["metadata"][0]["aliases"] == [entra.url.removeprefix("http://")]
    assert refused(unknown, 400, "invalid_tenant", 90002)
    assert keys == {"keys": []}


def test_the_app_factory() -> None:
    credential = FederatedCredential(CLIENT, "https://issuer.example.com", "user:u1")
    app = entra_app(TENANT, [credential])
    stand_in = app.state.stand_in
    assert isinstance(stand_in, EntraStandIn)
    assert stand_in.credentials == (credential,)
    assert stand_in.grants == []
