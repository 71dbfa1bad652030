"""Pagination of every list endpoint: ``limit``, ``cursor``, ``page_info``, newest first."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from federation.clock import ManualClock
from tests.support import World, bearer

Page = list[dict[str, Any]]
# Well-formed, but past any row number a database column holds.
HUGE_CURSOR = base64.urlsafe_b64encode(b"seq:" + b"9" * 20).decode().rstrip("=")


@dataclass(frozen=True)
class Listing:
    path: str
    id_field: str
    populate: Callable[[World, ManualClock, int], list[str]]
    """Creates ``n`` more items, one clock tick apart; returns their ids, oldest first."""


def _principals(world: World, clock: ManualClock, n: int) -> list[str]:
    created = []
    for _ in range(n):
        clock.advance(timedelta(seconds=1))
        created.append(world.principal(f"p{clock.now():%d%H%M%S}")["uid"])
    return created


def _api_keys(world: World, clock: ManualClock, n: int) -> list[str]:
    uid = f"holder{clock.now():%H%M%S}"
    world.principal(uid)
    created = []
    for index in range(n):
        clock.advance(timedelta(seconds=1))
        raw = world.api_key(uid, name=f"k{index}")
        me = world.client.get("/api/v1/whoami", headers=bearer(raw)).json()
        created.append(me["key"]["id"])
    return created


def _runs(world: World, clock: ManualClock, n: int) -> list[str]:
    uid = f"runner{clock.now():%H%M%S}"
    world.principal(uid)
    created = []
    for _ in range(n):
        clock.advance(timedelta(seconds=1))
        created.append(world.run(uid)["run_id"])
    return created


def _tokens(world: World, clock: ManualClock, n: int) -> list[str]:
    agent = world.agent(f"agent{clock.now():%H%M%S}")
    created = []
    for _ in range(n):
        clock.advance(timedelta(seconds=1))
        response = world.issue(agent)
        assert response.status_code == 200, response.text
        created.append(response.json()["jti"])
    return created


def _keys(world: World, clock: ManualClock, n: int) -> list[str]:
    created = []
    for index in range(n):
        # NOTE: past the lead time, so that the last rotation's key signs and this one
        # makes a new one (a rotation keeps a next key that waits already)
        clock.advance(timedelta(hours=1, seconds=1))
        alg = ("ES256", "RS256")[index % 2]
        response = world.client.post("/api/v1/keys/rotate", json={"alg": alg}, headers=world.admin)
        assert response.status_code == 201, response.text
        created.append(response.json()["items"][0]["kid"])
    return created


LISTINGS = {
    "principals": Listing("/api/v1/principals", "uid", _principals),
    "api-keys": Listing("/api/v1/api-keys", "id", _api_keys),
    "runs": Listing("/api/v1/runs", "run_id", _runs),
    "tokens": Listing("/api/v1/tokens", "jti", _tokens),
    "keys": Listing("/api/v1/keys", "kid", _keys),
}
every_listing = pytest.mark.parametrize("listing", list(LISTINGS.values()), ids=list(LISTINGS))


def get_page(
    client: TestClient, path: str, headers: dict[str, str], **params: str
) -> tuple[Page, dict[str, Any]]:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "page_info"}
    info = body["page_info"]
    assert set(info) == {"has_next_page", "next_cursor"}
    assert info["has_next_page"] is (info["next_cursor"] is not None)
    return list(body["items"]), dict(info)


def walk(
    client: TestClient, path: str, headers: dict[str, str], limit: int, **params: str
) -> list[Page]:
    """Every page, following next_cursor until has_next_page is false."""
    pages: list[Page] = []
    cursor: str | None = None
    while len(pages) < 100:
        query = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        items, info = get_page(client, path, headers, **query)
        assert len(items) <= limit
        pages.append(items)
        if not info["has_next_page"]:
            return pages
        assert len(items) == limit
        cursor = info["next_cursor"]
    raise AssertionError(f"{path} never reached its last page")


def ids(items: Page, field: str) -> list[str]:
    return [str(item[field]) for item in items]


@every_listing
def test_pages_cover_every_item_once_newest_first(
    world: World, client: TestClient, clock: ManualClock, listing: Listing
) -> None:
    created = listing.populate(world, clock, 7)
    everything = ids(get_page(client, listing.path, world.admin, limit="500")[0], listing.id_field)
    assert everything[: len(created)] == created[::-1]

    for limit in (1, 2, 3):
        pages = walk(client, listing.path, world.admin, limit)
        assert [ids(page, listing.id_field) for page in pages][-1]
        flat = [item for page in pages for item in ids(page, listing.id_field)]
        assert flat == everything, limit
        assert len(pages) == -(-len(everything) // limit)


@every_listing
def test_a_limit_equal_to_the_count_is_one_page(
    world: World, client: TestClient, clock: ManualClock, listing: Listing
) -> None:
    listing.populate(world, clock, 3)
    total = len(get_page(client, listing.path, world.admin, limit="500")[0])

    whole = walk(client, listing.path, world.admin, total)
    assert len(whole) == 1
    items, info = get_page(client, listing.path, world.admin, limit=str(total - 1))
    assert len(items) == total - 1
    assert info["has_next_page"] is True


@every_listing
@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
def test_a_limit_out_of_range_is_refused(
    world: World, client: TestClient, listing: Listing, limit: str
) -> None:
    response = client.get(listing.path, params={"limit": limit}, headers=world.admin)

    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-request/")


@every_listing
@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor", "c2VxOmFiYw", "%%%", pytest.param(HUGE_CURSOR, id="seq-overflow")],
)
def test_a_malformed_cursor_is_refused(
    world: World, client: TestClient, listing: Listing, cursor: str
) -> None:
    response = client.get(listing.path, params={"cursor": cursor}, headers=world.admin)

    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-request/")


@every_listing
def test_items_added_between_pages_are_neither_repeated_nor_skipped(
    world: World, client: TestClient, clock: ManualClock, listing: Listing
) -> None:
    before = listing.populate(world, clock, 4)
    first, info = get_page(client, listing.path, world.admin, limit="2")
    assert ids(first, listing.id_field) == before[::-1][:2]

    later = listing.populate(world, clock, 3)
    rest = walk(client, listing.path, world.admin, 2, cursor=str(info["next_cursor"]))
    seen = ids(first, listing.id_field) + [i for p in rest for i in ids(p, listing.id_field)]
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)
    assert not set(later) & set(seen)


def test_the_default_limit_is_twenty(world: World, client: TestClient, clock: ManualClock) -> None:
    _principals(world, clock, 24)

    items, info = get_page(client, "/api/v1/principals", world.admin)
    assert len(items) == 20
    assert info["has_next_page"] is True
    rest, _ = get_page(client, "/api/v1/principals", world.admin, cursor=info["next_cursor"])
    assert len(rest) == 25 - 20  # 24 and the bootstrap administrator


def test_filters_hold_across_pages(world: World, client: TestClient, clock: ManualClock) -> None:
    ada = world.agent("u1")
    bob = world.agent("u2", email="bob@example.com")
    for agent in (ada, bob, ada, ada, bob, ada):
        clock.advance(timedelta(seconds=1))
        assert world.issue(agent).status_code == 200
        world.run(agent.uid, state="QUEUED")

    tokens = [
        i for p in walk(client, "/api/v1/tokens", world.admin, 2, run_id=ada.run_id) for i in p
    ]
    assert len(tokens) == 4
    assert {row["run_id"] for row in tokens} == {ada.run_id}
    runs = [i for p in walk(client, "/api/v1/runs", world.admin, 2, principal_uid="u2") for i in p]
    assert len(runs) == 3
    assert {(run["principal_uid"]) for run in runs} == {"u2"}
    queued = [i for p in walk(client, "/api/v1/runs", world.admin, 4, state="QUEUED") for i in p]
    assert len(queued) == 6


def test_a_key_holder_pages_through_their_own_keys(world: World, client: TestClient) -> None:
    world.principal("u1")
    world.principal("u2", email="bob@example.com")
    mine = [world.api_key("u1", name=f"mine{i}") for i in range(5)]
    world.api_key("u2", name="bob")
    holder = bearer(mine[0])

    pages = walk(client, "/api/v1/api-keys", holder, 2)
    names = [item["name"] for page in pages for item in page]
    assert names == [f"mine{i}" for i in reversed(range(5))]
    assert [len(page) for page in pages] == [2, 2, 1]
