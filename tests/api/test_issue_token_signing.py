"""Issue-token signing: RS256 for Entra or on request, the audience format, key rotation."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from federation.clock import ManualClock
from federation.settings import Settings
from tests.api.test_issue_token import (
    STS,
    audit_rows,
    custom_world,
    issued,
    payload_segment,
    published_keys,
    published_kids,
    verify,
)
from tests.support import World

ENTRA = "api://AzureADTokenExchange"


def jwk_of(client: TestClient, kid: str) -> dict[str, Any]:
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    (found,) = [key for key in keys if key["kid"] == kid]
    return dict(found)


def test_entra_audience_is_signed_rs256(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    agent = world.agent()
    body = issued(world.issue(agent, audience=ENTRA))

    header = jwt.get_unverified_header(body["token"])
    assert header == {"typ": "JWT", "alg": "RS256", "kid": body["kid"]}
    assert jwk_of(client, body["kid"])["kty"] == "RSA"
    claims = verify(client, body["token"], audience=ENTRA, at=clock.now(), algorithm="RS256")
    assert claims["aud"] == [ENTRA]
    assert claims["run_id"] == agent.run_id
    assert audit_rows(world, run_id=agent.run_id)[0]["alg"] == "RS256"

    es256 = issued(world.issue(agent))
    assert es256["kid"] != body["kid"]
    assert jwt.get_unverified_header(es256["token"])["alg"] == "ES256"


@pytest.mark.parametrize("audience", [STS, "https://example.com/relying-party", ENTRA])
def test_rs256_can_be_chosen_for_any_audience(
    world: World, client: TestClient, clock: ManualClock, audience: str
) -> None:
    body = issued(world.issue(world.agent(), audience=audience, algorithm="RS256"))

    assert jwt.get_unverified_header(body["token"])["alg"] == "RS256"
    assert jwk_of(client, body["kid"])["alg"] == "RS256"
    verify(client, body["token"], audience=audience, at=clock.now(), algorithm="RS256")


def test_es256_can_be_chosen_explicitly(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    body = issued(world.issue(world.agent(), algorithm="ES256"))

    assert jwt.get_unverified_header(body["token"])["alg"] == "ES256"
    verify(client, body["token"], audience=STS, at=clock.now())


def test_es256_for_the_entra_audience_is_refused(world: World) -> None:
    agent = world.agent()
    response = world.issue(agent, audience=ENTRA, algorithm="ES256")

    assert response.status_code == 400
    problem = response.json()
    assert problem["type"].endswith("/invalid-request/")
    assert "RS256" in problem["detail"]
    assert audit_rows(world, run_id=agent.run_id) == []


def test_signing_alg_setting_changes_the_default(tmp_path: Path, clock: ManualClock) -> None:
    with custom_world(tmp_path, clock, signing_alg="RS256") as other:
        agent = other.agent()
        default = issued(other.issue(agent))
        chosen = issued(other.issue(agent, algorithm="ES256"))
        verify(other.client, default["token"], audience=STS, at=clock.now(), algorithm="RS256")
        verify(other.client, chosen["token"], audience=STS, at=clock.now(), algorithm="ES256")


def test_audience_as_a_plain_string_when_configured(tmp_path: Path, clock: ManualClock) -> None:
    with custom_world(tmp_path, clock, audience_format="string") as other:
        agent = other.agent()
        body = issued(other.issue(agent))
        claims = verify(other.client, body["token"], audience=STS, at=clock.now())
        rows = audit_rows(other, run_id=agent.run_id)

    assert payload_segment(body["token"])["aud"] == STS
    assert claims["aud"] == STS
    assert body["audience"] == STS
    assert rows[0]["audience"] == STS


# ---- rotation -------------------------------------------------------------------------


def test_rotation_switches_the_kid_after_the_lead_time_and_old_tokens_still_verify(
    world: World, client: TestClient, clock: ManualClock, settings: Settings
) -> None:
    agent = world.agent()
    before_at = clock.now()
    before = issued(world.issue(agent))
    before_entra = issued(world.issue(agent, audience=ENTRA))

    rotated = client.post("/api/v1/keys/rotate", headers=world.admin)
    assert rotated.status_code == 201, rotated.text
    fresh = {item["alg"]: item["kid"] for item in rotated.json()["items"]}
    assert set(fresh) == {"ES256", "RS256"}
    assert set(fresh.values()) <= published_kids(client)  # published before it signs

    clock.advance(timedelta(seconds=settings.key_lead_time - 1))
    assert issued(world.issue(agent))["kid"] == before["kid"]

    clock.advance(timedelta(seconds=2))
    after = issued(world.issue(agent))
    after_entra = issued(world.issue(agent, audience=ENTRA))
    assert after["kid"] == fresh["ES256"] != before["kid"]
    assert after_entra["kid"] == fresh["RS256"] != before_entra["kid"]
    assert jwt.get_unverified_header(after["token"])["kid"] == fresh["ES256"]
    verify(client, after["token"], audience=STS, at=clock.now())

    assert {before["kid"], before_entra["kid"]} <= published_kids(client)
    verify(client, before["token"], audience=STS, at=before_at)
    verify(client, before_entra["token"], audience=ENTRA, at=before_at, algorithm="RS256")

    states = {
        key["kid"]: key["state"]
        for key in client.get("/api/v1/keys", headers=world.admin).json()["items"]
    }
    assert states[before["kid"]] == states[before_entra["kid"]] == "retired"
    assert states[fresh["ES256"]] == states[fresh["RS256"]] == "active"


def test_a_retired_key_leaves_the_jwks_after_the_verification_window(
    world: World, client: TestClient, clock: ManualClock, settings: Settings
) -> None:
    agent = world.agent()
    old = issued(world.issue(agent, duration="5h"))  # capped: the longest a token lives
    client.post("/api/v1/keys/rotate", json={"alg": "ES256"}, headers=world.admin)
    clock.advance(timedelta(seconds=settings.key_lead_time))
    switched_at = clock.now()
    assert issued(world.issue(agent))["kid"] != old["kid"]

    clock.set(datetime.fromisoformat(old["expires_at"]))
    assert old["kid"] in published_kids(client)  # a verifier may still meet the token

    clock.set(switched_at + settings.verification_window)
    assert old["kid"] not in published_kids(client)
    with pytest.raises(KeyError):
        published_keys(client)[old["kid"]]


def test_rotating_one_algorithm_leaves_the_other_signing(
    world: World, client: TestClient, clock: ManualClock, settings: Settings
) -> None:
    agent = world.agent()
    es256 = issued(world.issue(agent))["kid"]
    rs256 = issued(world.issue(agent, audience=ENTRA))["kid"]

    rotated = client.post("/api/v1/keys/rotate", json={"alg": "RS256"}, headers=world.admin)
    assert rotated.status_code == 201
    (item,) = rotated.json()["items"]
    assert item["alg"] == "RS256"
    clock.advance(timedelta(seconds=settings.key_lead_time))

    assert issued(world.issue(agent))["kid"] == es256
    assert issued(world.issue(agent, audience=ENTRA))["kid"] == item["kid"] != rs256
