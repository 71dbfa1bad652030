"""The console's rotate button says what the rotation did: a new key, or the ``next``
key that waits already (kept: at most one per algorithm)."""

from __future__ import annotations

from tests.console.pages import post_form, sign_in
from tests.support import World


def test_rotating_again_says_the_waiting_key_was_kept(world: World) -> None:
    sign_in(world.client, world.admin_key)
    rotate = ("/console/signing-keys", "/console/signing-keys/rotate")
    first = post_form(world.client, *rotate, alg="RS256")
    again = post_form(world.client, *rotate, alg="RS256")

    assert again.headers["location"] == "/console/signing-keys?notice=already-next"
    assert first.headers["location"] == "/console/signing-keys?notice=rotated"
    keys = world.client.get("/api/v1/keys", headers=world.admin).json()["items"]
    assert [key["alg"] for key in keys if key["state"] == "next"] == ["RS256"]
    page = world.client.get("/console/signing-keys?notice=already-next").text
    assert "A next key was published already; no new key was made" in page
