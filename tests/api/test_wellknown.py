"""OIDC discovery, the JWKS and its caching, the probes, and the OpenAPI document."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from federation.api import create_app
from federation.clock import ManualClock
from federation.registry.principals import bootstrap_admin
from federation.server.runtime import open_keyring
from federation.settings import Settings
from federation.store import Store
from tests.conftest import make_settings
from tests.support import Agent, World

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"
PUBLIC_MEMBERS = {"kty", "alg", "use", "kid", "n", "e", "x", "y", "crv"}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638, computed here from the published members."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issued_token(world: World, agent: Agent | None = None, **body: Any) -> str:
    response = world.issue(agent or world.agent(), **body)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def verified_claims(client: TestClient, clock: ManualClock, token: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    keys = jwt.PyJWKSet.from_dict(client.get(JWKS).json())
    # NOTE: real_asyncio: the test client's event loop runs in another thread meanwhile.
    with freeze_time(clock.now(), real_asyncio=True):
        claims: dict[str, Any] = jwt.decode(
            token,
            key=keys[header["kid"]],
            algorithms=[header["alg"]],
            options={"verify_aud": False},
        )
    return claims


@dataclass
class Built:
    client: TestClient
    store: Store

    def world(self, clock: ManualClock) -> World:
        with self.store.session() as session:
            created = bootstrap_admin(session, clock.now())
        assert created is not None
        return World(self.client, created.raw)


@pytest.fixture
def build_app(clock: ManualClock) -> Iterator[Callable[[Settings], Built]]:
    """Builds extra applications on their own settings; all closed after the test."""
    opened: list[Built] = []

    def build(settings: Settings) -> Built:
        store = Store.from_url(settings.database_url)
        store.migrate()
        keyring = open_keyring(settings, clock)
        keyring.ensure()
        app = create_app(settings, store=store, keyring=keyring, clock=clock)
        built = Built(TestClient(app, raise_server_exceptions=False), store)
        built.client.__enter__()
        opened.append(built)
        return built

    yield build
    for built in opened:
        built.client.__exit__(None, None, None)
        built.store.dispose()


# ---- discovery ----------------------------------------------------------------------


def test_discovery_document(client: TestClient, settings: Settings) -> None:
    response = client.get(DISCOVERY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["issuer"] == settings.issuer
    assert document["jwks_uri"] == f"{settings.issuer}/.well-known/jwks.json"
    assert document["response_types_supported"] == ["id_token"]
    assert document["subject_types_supported"] == ["public"]
    assert document["scopes_supported"] == ["openid"]
    published = {jwk["alg"] for jwk in client.get(JWKS).json()["keys"]}
    assert set(document["id_token_signing_alg_values_supported"]) == published
    assert published == {"ES256", "RS256"}
    assert "none" not in document["id_token_signing_alg_values_supported"]


def test_issuer_is_byte_equal_to_the_tokens_iss(
    world: World, clock: ManualClock, settings: Settings
) -> None:
    raw = world.client.get(DISCOVERY).content
    issuer = world.client.get(DISCOVERY).json()["issuer"]
    assert f'"issuer":"{settings.issuer}"'.encode() in raw
    agent = world.agent()
    for body in ({}, {"audience": "api://AzureADTokenExchange"}):
        claims = verified_claims(world.client, clock, issued_token(world, agent, **body))
        assert claims["iss"].encode() == issuer.encode()


def test_claims_supported_covers_every_claim_issued(world: World, clock: ManualClock) -> None:
    supported = set(world.client.get(DISCOVERY).json()["claims_supported"])
    claims = verified_claims(world.client, clock, issued_token(world))
    assert set(claims) <= supported
    assert {"iss", "sub", "aud", "iat", "exp", "jti", "run_id", "environment", "host"} <= supported


def test_jwks_uri_is_served(client: TestClient) -> None:
    jwks_uri = client.get(DISCOVERY).json()["jwks_uri"]
    path = "/" + jwks_uri.split("://", 1)[1].split("/", 1)[1]
    assert client.get(path).json() == client.get(JWKS).json()


def test_issuer_with_a_path(
    tmp_path: Path, build_app: Callable[[Settings], Built], clock: ManualClock
) -> None:
    issuer = "https://issuer.example.com/tenant-a"
    built = build_app(make_settings(tmp_path / "tenant", issuer=issuer))
    client = built.client
    for path in (f"/tenant-a{DISCOVERY}", DISCOVERY):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.json()["issuer"] == issuer
        assert response.json()["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert client.get(f"/tenant-a{JWKS}").json() == client.get(JWKS).json()
    assert client.get(f"/tenant-b{DISCOVERY}").status_code == 404
    claims = verified_claims(client, clock, issued_token(built.world(clock)))
    assert claims["iss"] == issuer
    assert "/tenant-a/.well-known/openid-configuration" not in client.get("/openapi.json").text


# ---- JWKS ---------------------------------------------------------------------------


def test_jwks_publishes_public_keys_only(client: TestClient) -> None:
    response = client.get(JWKS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert set(document) == {"keys"}
    keys = document["keys"]
    assert sorted(jwk["alg"] for jwk in keys) == ["ES256", "RS256"]
    for jwk in keys:
        assert set(jwk) <= PUBLIC_MEMBERS
        assert not set(jwk) & PRIVATE_MEMBERS
        assert jwk["use"] == "sig"
        assert jwk["kid"] == thumbprint(jwk)
    ec_key = next(jwk for jwk in keys if jwk["alg"] == "ES256")
    assert (ec_key["kty"], ec_key["crv"]) == ("EC", "P-256")
    rsa_key = next(jwk for jwk in keys if jwk["alg"] == "RS256")
    assert rsa_key["kty"] == "RSA"
    assert len(base64.urlsafe_b64decode(rsa_key["n"] + "==")) >= 256  # at least 2048 bits
    jwt.PyJWKSet.from_dict(document)  # PyJWT reads every key


def test_jwks_keys_verify_both_algorithms(world: World, clock: ManualClock) -> None:
    agent = world.agent()
    published = {jwk["kid"]: jwk["alg"] for jwk in world.client.get(JWKS).json()["keys"]}
    for body, alg in (({}, "ES256"), ({"algorithm": "RS256"}, "RS256")):
        token = issued_token(world, agent, **body)
        header = jwt.get_unverified_header(token)
        assert header["alg"] == alg
        assert published[header["kid"]] == alg
        assert verified_claims(world.client, clock, token)["sub"] == "user:u1"


@pytest.mark.parametrize("max_age", [None, 120])
def test_cache_control(
    tmp_path: Path, build_app: Callable[[Settings], Built], max_age: int | None
) -> None:
    overrides: dict[str, Any] = {} if max_age is None else {"jwks_max_age": max_age}
    settings = make_settings(tmp_path / "cache", **overrides)
    client = build_app(settings).client
    expected = f"public, max-age={settings.jwks_max_age}"
    assert client.get(JWKS).headers["Cache-Control"] == expected
    assert client.get(DISCOVERY).headers["Cache-Control"] == expected


def test_etag_and_if_none_match(client: TestClient) -> None:
    first = client.get(JWKS)
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert client.get(JWKS).headers["ETag"] == etag  # stable while the keys are
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = client.get(JWKS, headers={"If-None-Match": sent})
        assert cached.status_code == 304, sent
        assert cached.content == b""
        assert cached.headers["ETag"] == etag
    for sent in ('"something-else"', etag.strip('"')):
        fresh = client.get(JWKS, headers={"If-None-Match": sent})
        assert fresh.status_code == 200, sent
        assert fresh.json() == first.json()


def test_etag_changes_when_keys_rotate(world: World) -> None:
    before = world.client.get(JWKS)
    rotated = world.client.post("/api/v1/keys/rotate", headers=world.admin)
    assert rotated.status_code == 201, rotated.text
    new_kids = {item["kid"] for item in rotated.json()["items"]}
    after = world.client.get(JWKS)
    assert after.headers["ETag"] != before.headers["ETag"]
    published = {jwk["kid"] for jwk in after.json()["keys"]}
    assert new_kids <= published  # the next keys are published before they sign
    assert {jwk["kid"] for jwk in before.json()["keys"]} <= published
    stale = world.client.get(JWKS, headers={"If-None-Match": before.headers["ETag"]})
    assert stale.status_code == 200


# ---- probes and OpenAPI -------------------------------------------------------------


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_reports_its_checks(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"store": "ok", "key:ES256": "ok", "key:RS256": "ok"},
    }


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/v1/federate/issue-token", "/graphql/v2", JWKS, DISCOVERY, "/readyz"):
        assert path in document["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/jwks.json"])
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["cache-control"] == got.headers["cache-control"]
    assert head.headers.get("etag") == got.headers.get("etag")
