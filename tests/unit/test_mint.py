"""Minter.mint: the in-process half of issuing that `make bench` measures."""

from __future__ import annotations

from pathlib import Path

import jwt

from federation.clock import ManualClock
from federation.store import Store
from federation.subjects import SubjectContext, parse_template
from tests.store.seeding import token_issuer

CONTEXT = SubjectContext(
    principal_type="user",
    principal_uid="ada",
    run_id="run-1",
    email="ada@example.com",
    team="platform",
    environment="staging",
    agent_name=None,
    skill_spec=None,
    host=None,
)


def test_mint_signs_the_rendered_subject_with_the_active_key(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path}/unused.db")
    try:
        pipeline = token_issuer(store, tmp_path, f"sqlite:///{tmp_path}/unused.db", clock)
    finally:
        store.dispose()
    issuer = pipeline.minter
    grant = pipeline.durations.grant(900)
    template = parse_template(["teams", "environment"])
    first = issuer.mint(CONTEXT, template, "sts.amazonaws.com", grant)
    again = issuer.mint(CONTEXT, template, "sts.amazonaws.com", grant, alg="RS256")
    for minted in (first, again):
        signer, _ = issuer.keyring.signer(minted.alg, clock.now())
        claims = jwt.decode(
            minted.token,
            signer.public_key,
            algorithms=[minted.alg],
            audience="sts.amazonaws.com",
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
        assert jwt.get_unverified_header(minted.token)["kid"] == signer.kid
        assert claims["sub"] == "teams:platform/environment:staging"
        assert claims["exp"] - claims["iat"] == 900
    assert first.claims.jti != again.claims.jti
    # the cached rendering answers for its own context only
    other = issuer.mint(
        CONTEXT.__class__(**{**CONTEXT.__dict__, "environment": "prod"}),
        template,
        "sts.amazonaws.com",
        grant,
    )
    assert other.claims.subject == "teams:platform/environment:prod"
