"""The GCP stand-in checks a token as a workload identity provider does. Tokens here are
signed with PyJWT by a small issuer served on loopback, so each rule can be broken."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from federation.clock import ManualClock
from federation.stand_ins.gcp_sts import CONDITION_REFUSED, Condition, Provider, gcp_sts_app
from federation.stand_ins.issuers import IssuerKeys
from federation.stand_ins.serving import serve
from tests.exchange.gcp_helpers import CLOUD_PLATFORM, POOL, PROVIDER, SERVICE_ACCOUNT
from tests.support import federation_command, free_port

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


class Issuer:
    """An OIDC issuer with one EC and one RSA key (PyJWT signs, discovery serves)."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {
            "ec-1": ec.generate_private_key(ec.SECP256R1()),
            "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        }
        self.url = ""

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            algorithm = (
                jwt.algorithms.ECAlgorithm if kid.startswith("ec") else jwt.algorithms.RSAAlgorithm
            )
            jwk = algorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append(
                {
                    **jwk,
                    "kid": kid,
                    "use": "sig",
                    "alg": "ES256" if kid.startswith("ec") else "RS256",
                }
            )
        return {"keys": keys}

    def app(self) -> Starlette:
        async def discovery(request: Request) -> JSONResponse:
            return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/jwks"})

        async def jwks(request: Request) -> JSONResponse:
            return JSONResponse(self.jwks())

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
            ]
        )

    def token(
        self, *, alg: str = "ES256", kid: str | None = "ec-1", key: Any = None, **claims: Any
    ) -> str:
        body = {"iss": self.url, "sub": "user:u1", "aud": [PROVIDER], "iat": T - 5, "exp": T + 600}
        body.update(claims)
        signing = key if key is not None else self.keys["ec-1" if alg.startswith("ES") else "rsa-1"]
        headers = {"kid": kid} if kid else {}
        return jwt.encode(body, signing, algorithm=alg, headers=headers)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    with serve(issuer.app()) as url:
        issuer.url = url
        yield issuer


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


class StandIn:
    """The stand-in app driven in process (its loopback serving is tested elsewhere)."""

    def __init__(self, app: Starlette, clock: ManualClock) -> None:
        self.client = TestClient(app, base_url="http://127.0.0.1")
        self.clock, self.gcp = clock, app.state.gcp

    def exchange(self, token: str, **changes: Any) -> httpx2.Response:
        form = {
            "grant_type": GRANT,
            "audience": PROVIDER,
            "scope": CLOUD_PLATFORM,
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "subject_token": token,
            "subject_token_type": JWT_TYPE,
            **changes,
        }
        return self.client.post("/v1/token", data=form)

    def refusal(self, token: str, **changes: Any) -> tuple[str, str]:
        response = self.exchange(token, **changes)
        assert response.status_code == 400, response.text
        body = response.json()
        assert set(body) == {"error", "error_description"}
        return body["error"], body["error_description"]

    def generate(
        self, federated: str | None, account: str = SERVICE_ACCOUNT, **body: Any
    ) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {federated}"} if federated else {}
        url = f"/v1/projects/-/serviceAccounts/{account}:generateAccessToken"
        payload = {"scope": [CLOUD_PLATFORM], "lifetime": "3600s", **body}
        return self.client.post(url, json=payload, headers=headers)


def stand_in_for(
    provider: Provider, http: httpx.Client | None = None, **bindings: list[str]
) -> StandIn:
    clock = ManualClock(NOW)
    keys = IssuerKeys(http) if http is not None else None
    return StandIn(gcp_sts_app([provider], bindings, clock=clock, keys=keys), clock)


@pytest.fixture
def stand_in(issuer: Issuer, http: httpx.Client, request: pytest.FixtureRequest) -> StandIn:
    """The stand-in trusting ``issuer`` (provider options from an indirect parameter)."""
    options = getattr(request, "param", {})
    provider = Provider(name=PROVIDER, issuer_uri=issuer.url, **options)
    bindings = {
        SERVICE_ACCOUNT: [
            f"principal://{POOL}/subject/user:u1",
            f"principalSet://{POOL}/group/ops",
        ],
        "env@acme-prod.iam.gserviceaccount.com": [
            f"principalSet://{POOL}/attribute.environment/prod"
        ],
    }
    return stand_in_for(provider, http, **bindings)


def test_es256_and_rs256_are_accepted(issuer: Issuer, stand_in: StandIn) -> None:
    for alg in ("ES256", "RS256"):
        response = stand_in.exchange(
            issuer.token(alg=alg, kid="ec-1" if alg == "ES256" else "rsa-1")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "issued_token_type", "token_type", "expires_in"}
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 600  # no longer than the token it was traded for
    assert [seen.header["alg"] for seen in stand_in.gcp.exchanges] == ["ES256", "RS256"]


@pytest.mark.parametrize(
    ("token_options", "message"),
    [
        ({"alg": "RS384", "kid": "rsa-1"}, "RS256 or ES256"),
        ({"alg": "HS256", "key": "x" * 32}, "RS256 or ES256"),
        ({"kid": None}, "kid"),
        ({"key": ec.generate_private_key(ec.SECP256R1())}, "Invalid ID Token signature."),
        ({"iat": T + 60, "exp": T + 600}, "iat must be in the past"),
        ({"iat": T - 700, "exp": T - 100}, "has expired"),
        ({"iat": T - 5, "exp": T - 5 + 48 * 3600}, "less than 48 hours"),
        ({"aud": ["https://example.com"]}, "audience in JWT does not match"),
        ({"sub": "é" * 64}, "exceeds the 127 bytes limit"),
        ({"iss": "https://issuer.example.com"}, "issuer in ID Token does not match"),
    ],
)
def test_refusals(
    issuer: Issuer, stand_in: StandIn, token_options: dict[str, Any], message: str
) -> None:
    error, description = stand_in.refusal(issuer.token(**token_options))
    assert error == "invalid_grant"
    assert message in description


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": PROVIDER},
        {"aud": f"https:{PROVIDER}"},
        {"aud": ["other", f"https:{PROVIDER}"]},
        {"iat": T - 5, "exp": T - 6 + 48 * 3600},
        {"sub": "s" * 127},
    ],
)
def test_what_gcp_accepts(issuer: Issuer, stand_in: StandIn, claims: dict[str, Any]) -> None:
    assert stand_in.exchange(issuer.token(**claims)).status_code == 200


@pytest.mark.parametrize("stand_in", [{"allowed_audiences": ("agents-gcp",)}], indirect=True)
def test_allowed_audiences_replace_the_resource_name(issuer: Issuer, stand_in: StandIn) -> None:
    assert stand_in.exchange(issuer.token(aud="agents-gcp")).status_code == 200
    error, _ = stand_in.refusal(issuer.token(aud=PROVIDER))
    assert error == "invalid_grant"


def test_the_request_itself(issuer: Issuer, stand_in: StandIn) -> None:
    token = issuer.token()
    assert stand_in.refusal(token, grant_type="password")[0] == "unsupported_grant_type"
    error, description = stand_in.refusal(token, audience=PROVIDER.replace("123456789012", "1"))
    assert (error, description[:29]) == ("invalid_request", 'Invalid value for "audience".')
    assert "subject_token_type" in stand_in.refusal(token, subject_token_type="saml2")[1]
    assert stand_in.refusal(token, scope="")[1] == "Scope(s) must be provided."
    as_json = {  # the REST reference's names
        "grantType": GRANT,
        "audience": PROVIDER,
        "scope": CLOUD_PLATFORM,
        "requestedTokenType": "urn:ietf:params:oauth:token-type:access_token",
        "subjectToken": token,
        "subjectTokenType": JWT_TYPE,
    }
    response = stand_in.client.post("/v1/token", json=as_json)
    assert response.status_code == 200, response.text


def test_an_unreachable_issuer(issuer: Issuer, http: httpx.Client) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    stand_in = stand_in_for(Provider(name=PROVIDER, issuer_uri=gone), http)
    error, description = stand_in.refusal(issuer.token(iss=gone))
    assert (error, description) == (
        "invalid_grant",
        "Error connecting to the given credential's issuer.",
    )


def test_an_uploaded_jwks_for_a_private_issuer(issuer: Issuer) -> None:
    private = Provider(
        name=PROVIDER,
        issuer_uri="https://private.example.com",
        jwks_json=json.dumps(issuer.jwks()),
    )
    response = stand_in_for(private).exchange(issuer.token(iss="https://private.example.com"))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("condition", "accepted"),
    [
        (Condition(subject_prefix="user:"), True),
        (Condition(subject_prefix="service_account:"), False),
        (Condition(team="ops"), True),
        (Condition(team="finance"), False),
        (Condition(team="ops", claims={"environment": "prod"}), True),
        (Condition(claims={"environment": "staging"}), False),
    ],
)
def test_attribute_conditions(
    issuer: Issuer, http: httpx.Client, condition: Condition, accepted: bool
) -> None:
    provider = Provider(name=PROVIDER, issuer_uri=issuer.url, condition=condition)
    response = stand_in_for(provider, http).exchange(
        issuer.token(teams=["ops"], environment="prod")
    )
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert response.json() == {
            "error": "unauthorized_client",
            "error_description": "The given credential is rejected by the attribute condition.",
        }


def test_conditions_read_as_cel() -> None:
    condition = Condition(subject_prefix="user:", team="ops", claims={"environment": "prod"})
    assert condition.cel() == (
        "assertion.sub.startsWith('user:') && 'ops' in assertion.teams"
        " && assertion.environment == 'prod'"
    )
    assert Condition().cel() == "true"


def test_providers_are_checked() -> None:
    with pytest.raises(ValueError, match="resource name"):
        Provider(name=PROVIDER.replace("123456789012", "acme-prod"), issuer_uri="https://x")
    with pytest.raises(ValueError, match="at most 10"):
        Provider(name=PROVIDER, issuer_uri="https://x", allowed_audiences=tuple("abcdefghijk"))


@pytest.mark.parametrize(
    ("provider_id", "words"),
    [("oz", "4 to 32 characters"), ("OzAgents", "lowercase"), ("gcp-agents", "Google reserves")],
)
def test_provider_ids_follow_the_testers_naming_rules(provider_id: str, words: str) -> None:
    name = PROVIDER.rsplit("/", 1)[0] + f"/{provider_id}"
    with pytest.raises(ValueError, match=words):
        Provider(name=name, issuer_uri="https://x")


def federated(stand_in: StandIn, token: str) -> str:
    response = stand_in.exchange(token)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_impersonation(issuer: Issuer, stand_in: StandIn) -> None:
    response = stand_in.generate(federated(stand_in, issuer.token()), lifetime="1800s")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"accessToken", "expireTime"}
    assert body["expireTime"] == "2026-11-28T12:30:00Z"
    (seen,) = stand_in.gcp.impersonations
    assert seen.principal == f"principal://{POOL}/subject/user:u1"
    assert seen.lifetime_seconds == 1800


def test_principal_sets(issuer: Issuer, stand_in: StandIn) -> None:
    in_ops = federated(stand_in, issuer.token(sub="user:u2", teams=["ops"]))
    assert stand_in.generate(in_ops).status_code == 200
    in_prod = federated(stand_in, issuer.token(sub="user:u3", environment="prod"))
    assert stand_in.generate(in_prod, "env@acme-prod.iam.gserviceaccount.com").status_code == 200
    assert stand_in.generate(in_prod).status_code == 403


def test_impersonation_refusals(issuer: Issuer, stand_in: StandIn) -> None:
    stranger = federated(stand_in, issuer.token(sub="user:u9"))
    denied = stand_in.generate(stranger)
    assert denied.status_code == 403
    error = denied.json()["error"]
    assert (error["code"], error["status"]) == (403, "PERMISSION_DENIED")
    assert error["message"].startswith("Permission 'iam.serviceAccounts.getAccessToken' denied")
    assert error["details"][0]["reason"] == "IAM_PERMISSION_DENIED"

    token = federated(stand_in, issuer.token())
    assert stand_in.generate(token, "nobody@acme-prod.iam.gserviceaccount.com").status_code == 404
    assert (
        stand_in.generate(token, lifetime="7200s").json()["error"]["status"] == "INVALID_ARGUMENT"
    )
    assert stand_in.generate(token, scope=[]).status_code == 400
    assert stand_in.generate(None).status_code == 401
    assert stand_in.generate("ya29.made-up").json()["error"]["status"] == "UNAUTHENTICATED"
    stand_in.clock.advance(timedelta(minutes=11))  # past the federated token's expiry
    assert stand_in.generate(token).status_code == 401
    other = stand_in.client.post(f"/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:signBlob")
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (("--attribute-condition", "assertion.sub =="), "not valid CEL"),
        (("--attribute-mapping", "google.groups=assertion.teams"), "google.subject"),
        (("--attribute-condition", "true", "--require-team", "ops"), "not both"),
    ],
)
def test_the_command_refuses_a_provider_gcp_would_not_save(
    options: tuple[str, ...], words: str
) -> None:
    command = federation_command(
        "stand-in", "gcp", "--issuer", "https://issuer.example.com", "--provider", PROVIDER
    )
    done = subprocess.run(
        [*command, *options], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert words in done.stderr


def test_a_provider_with_its_own_mapping_and_full_cel(issuer: Issuer, http: httpx.Client) -> None:
    provider = Provider(
        name=PROVIDER,
        issuer_uri=issuer.url,
        attribute_mapping={
            "google.subject": "assertion.sub.split(':')[1]",
            "attribute.team": "assertion.teams[0]",
        },
        condition="attribute.team in ['ops', 'sre'] && google.subject.matches('^u[0-9]+$')",
    )
    bindings = {SERVICE_ACCOUNT: [f"principalSet://{POOL}/attribute.team/ops"]}
    stand_in = stand_in_for(provider, http, **bindings)
    token = federated(stand_in, issuer.token(teams=["ops"]))
    assert stand_in.generate(token).status_code == 200
    assert stand_in.gcp.impersonations[-1].principal == f"principal://{POOL}/subject/u1"
    refused = stand_in.refusal(issuer.token(teams=["finance"]))
    assert refused == ("unauthorized_client", CONDITION_REFUSED)
    error, description = stand_in.refusal(issuer.token())  # no teams: the mapping fails
    assert error == "invalid_grant"
    assert "attribute.team" in description
