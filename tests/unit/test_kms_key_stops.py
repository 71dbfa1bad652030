"""The ``aws-kms`` key store (moto in process): a key revoked through one keyring signs
no token that another, stale keyring records afterwards; the audit commit reads the
key's row in the database, as for the ``database`` store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jwt

from federation.clock import ManualClock
from federation.issuing.pipeline import IssueRequest, TokenIssuer
from federation.server.runtime import open_keyring
from federation.store import Store
from federation.store.issuing import issue_store
from tests.conftest import make_settings
from tests.seeding import seed
from tests.unit.conftest import REGION


def test_a_kms_key_revoked_elsewhere_signs_no_token_recorded_after(
    kms: Any, tmp_path: Path, clock: ManualClock
) -> None:
    settings = make_settings(tmp_path, key_store="aws-kms", kms_region=REGION)
    store = Store.from_url(settings.database_url)
    try:
        store.migrate()
        changing = open_keyring(settings, clock, store)
        changing.ensure(["ES256"])
        stale = open_keyring(settings, clock, store)
        stale.refresh_interval = 3600  # a replica between two looks at the store
        stale.load()
        issuer = TokenIssuer.from_settings(settings, issue_store(store), stale, clock)
        seeded = seed(store, clock.now())
        request = IssueRequest(
            run_id="r1", audience="sts.amazonaws.com", workload_token=seeded.workload_token
        )

        async def kid_of_next_token() -> str:
            caller = await issuer.authenticate(seeded.key)
            token = (await issuer.issue(caller, request)).token
            return str(jwt.get_unverified_header(token)["kid"])

        with asyncio.Runner() as loop:
            old = loop.run(kid_of_next_token())
            change = changing.revoke(old)
            assert change.replacement is not None
            assert change.replacement.location.startswith("aws-kms ")
            assert loop.run(kid_of_next_token()) == change.replacement.kid
            loop.run(issuer.audit.drain())
            loop.run(issuer.store.close())
    finally:
        store.dispose()
