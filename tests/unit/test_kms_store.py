"""The aws-kms key store wired as the server wires it, against moto in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys.database import DatabaseKeyStore
from federation.keys.kms import KmsMaterial
from federation.registry.principals import bootstrap_admin
from federation.server.runtime import open_keyring
from federation.store import Store
from tests.conftest import make_settings
from tests.support import World
from tests.unit.conftest import REGION


def test_a_token_signed_in_kms_verifies_with_pyjwt(
    kms: Any, tmp_path: Path, clock: ManualClock
) -> None:
    settings = make_settings(tmp_path, key_store="aws-kms", kms_region=REGION)
    store = Store.from_url(settings.database_url)
    try:
        store.migrate()
        keyring = open_keyring(settings, clock, store)
        created = keyring.ensure()
        assert {record.location.split()[0] for record in created} == {"aws-kms"}
        arns = {record.location.split()[1] for record in created}
        assert {key["KeyArn"] for key in _listed(kms)} == arns  # the private keys live in KMS
        with store.session() as session:
            admin = bootstrap_admin(session, clock.now())
        assert admin is not None
        app = create_app(settings, store=store, keyring=keyring, clock=clock)
        with TestClient(app) as client:
            world = World(client, admin.raw)
            agent = world.agent()
            jwks = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
            for audience, alg in (
                ("sts.amazonaws.com", "ES256"),
                ("api://AzureADTokenExchange", "RS256"),
            ):
                token = world.issue(agent, audience=audience).json()["token"]
                kid = jwt.get_unverified_header(token)["kid"]
                key = next(k for k in jwks.keys if k.key_id == kid)
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=[alg],
                    audience=audience,
                    options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
                )
                assert claims["sub"] == "user:u1"
    finally:
        store.dispose()


def test_a_kms_key_that_cannot_be_stored_is_scheduled_for_deletion(
    kms: Any, store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = DatabaseKeyStore(store, KmsMaterial(kms))

    def refuse(self: Session) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Session, "commit", refuse)
    with pytest.raises(RuntimeError, match="went away"):
        keys.create_if(lambda _: clock.now(), "ES256", created_at=clock.now())
    monkeypatch.undo()
    [made] = _listed(kms)
    state = kms.describe_key(KeyId=made["KeyId"])["KeyMetadata"]["KeyState"]
    assert state == "PendingDeletion"
    assert keys.load() == []


def _listed(kms: Any) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = kms.list_keys()["Keys"]
    return keys
