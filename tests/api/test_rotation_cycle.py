"""No token we issue ever fails verification because of a rotation.

A verifier that behaves like a cloud (it fetches the JWKS, keeps it as long as
``Cache-Control`` allows, revalidates with ``If-None-Match``, and never refetches early
for an unknown ``kid``) checks every live token at every step while the injected clock
drives keys through next → active → retired → removed, for both algorithms.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring, KeyState
from federation.registry.principals import bootstrap_admin
from federation.server.runtime import open_keyring
from federation.store import Store
from tests.conftest import make_settings
from tests.support import World

STEP = timedelta(minutes=5)
PERIOD = timedelta(hours=6)
ENTRA = "api://AzureADTokenExchange"
AWS = "sts.amazonaws.com"


@dataclass
class CachingVerifier:
    """A relying party's JWKS cache, on the injected clock."""

    client: TestClient
    clock: ManualClock
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    etag: str | None = None
    fresh_until: datetime | None = None
    fetches: int = 0

    def refresh_if_stale(self) -> None:
        now = self.clock.now()
        if self.fresh_until is not None and now < self.fresh_until:
            return
        headers = {"If-None-Match": self.etag} if self.etag else {}
        response = self.client.get("/.well-known/jwks.json", headers=headers)
        self.fetches += 1
        if response.status_code == 200:
            document = response.json()
            self.keys = {jwk["kid"]: jwt.PyJWK(jwk) for jwk in document["keys"]}
            self.etag = response.headers["etag"]
        else:
            assert response.status_code == 304
        max_age = re.search(r"max-age=(\d+)", response.headers["cache-control"])
        assert max_age is not None
        self.fresh_until = now + timedelta(seconds=int(max_age.group(1)))

    def verify(self, token: str, audience: str, issuer: str) -> dict[str, Any]:
        self.refresh_if_stale()
        kid = jwt.get_unverified_header(token)["kid"]
        key = self.keys.get(kid)
        assert key is not None, f"kid {kid} is not in the cached JWKS"
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=audience,
            issuer=issuer,
            # The clock is injected: times are checked against it below, not the wall.
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
        now = int(self.clock.now().timestamp())
        assert claims["nbf"] <= now < claims["exp"]
        return claims


@pytest.fixture
def cycle(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[World, Keyring]]:
    # Rotated by hand below; a JWKS cache lives six steps, as long as the lead time allows.
    # Hours of tokens for one key and run pass in seconds of real time: no rate limits.
    settings = make_settings(
        tmp_path / "cycle",
        key_rotation_period=0,
        jwks_max_age="30m",
        rate_limit_key="off",
        rate_limit_run="off",
    )
    store = Store.from_url(settings.database_url)
    store.migrate()
    keyring = open_keyring(settings, clock)
    keyring.ensure()
    app = create_app(settings, store=store, keyring=keyring, clock=clock)
    with store.session() as session:
        admin = bootstrap_admin(session, clock.now())
    assert admin is not None
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield World(client, admin.raw), keyring
    finally:
        store.dispose()


def test_every_token_verifies_through_two_full_rotation_cycles(
    cycle: tuple[World, Keyring], clock: ManualClock
) -> None:
    world, keyring = cycle
    agent = world.agent()
    issuer = world.client.get("/.well-known/openid-configuration").json()["issuer"]
    verifier = CachingVerifier(world.client, clock)
    verifier.refresh_if_stale()
    live: list[tuple[str, str, int]] = []  # token, audience, exp
    durations = ["15m", "1h", "3h"]
    checks = 0
    seen_states: dict[str, set[KeyState]] = {}
    for step in range(int(timedelta(hours=30) / STEP)):
        clock.advance(STEP)
        made = keyring.rotate_due(PERIOD)
        if made:
            print(
                "rotated",
                clock.now(),
                [(m.alg, m.kid[:6], m.activates_at) for m in made],
                "cache until",
                verifier.fresh_until,
            )
        audience = ENTRA if step % 2 else AWS
        response = world.issue(agent, audience=audience, duration=durations[step % 3])
        assert response.status_code == 200, response.text
        body = response.json()
        live.append(
            (
                body["token"],
                audience,
                int(jwt.decode(body["token"], options={"verify_signature": False})["exp"]),
            )
        )
        now = int(clock.now().timestamp())
        live = [entry for entry in live if entry[2] > now]
        for token, aud, _ in live:
            verifier.verify(token, aud, issuer)
            checks += 1
        for status in keyring.statuses():
            seen_states.setdefault(status.record.kid, set()).add(status.state)
    assert checks > 2000
    full_cycles = [kid for kid, states in seen_states.items() if states == set(KeyState)]
    algorithms = {s.record.alg for s in keyring.statuses() if s.record.kid in full_cycles}
    assert algorithms == {"ES256", "RS256"}  # both rotated independently, start to end
    published = world.client.get("/.well-known/jwks.json").json()["keys"]
    assert len(published) <= 6  # next, active and retired at most, per algorithm
    assert verifier.fetches < checks / 10  # it really did rely on its cache


def test_a_new_key_is_in_every_cached_jwks_before_it_signs(
    cycle: tuple[World, Keyring], clock: ManualClock
) -> None:
    world, keyring = cycle
    agent = world.agent()
    issuer = world.client.get("/.well-known/openid-configuration").json()["issuer"]
    verifier = CachingVerifier(world.client, clock)
    verifier.refresh_if_stale()  # a cache taken just before the rotation ...
    fresh = keyring.rotate("ES256")
    assert fresh.activates_at == clock.now() + keyring.lead_time
    clock.set(fresh.activates_at)  # ... is stale long before the new key signs
    body = world.issue(agent).json()
    assert jwt.get_unverified_header(body["token"])["kid"] == fresh.kid
    assert verifier.verify(body["token"], AWS, issuer)["sub"] == "user:u1"


def test_a_retired_keys_tokens_verify_to_their_end_and_a_revoked_keys_do_not(
    cycle: tuple[World, Keyring], clock: ManualClock
) -> None:
    world, keyring = cycle
    agent = world.agent()
    issuer = world.client.get("/.well-known/openid-configuration").json()["issuer"]
    first = world.issue(agent, duration="3h").json()["token"]
    first_kid = jwt.get_unverified_header(first)["kid"]
    change = keyring.retire(first_kid)
    assert change.replacement is not None
    second = world.issue(agent, duration="3h").json()["token"]
    assert jwt.get_unverified_header(second)["kid"] == change.replacement.kid
    verifier = CachingVerifier(world.client, clock)
    for _ in range(int(timedelta(hours=3) / STEP) - 1):
        clock.advance(STEP)
        verifier.verify(first, AWS, issuer)
        verifier.verify(second, AWS, issuer)
    keyring.revoke(change.replacement.kid)
    clock.advance(timedelta(minutes=31))  # past any cache lifetime
    with pytest.raises(AssertionError, match="not in the cached JWKS"):
        verifier.verify(second, AWS, issuer)
