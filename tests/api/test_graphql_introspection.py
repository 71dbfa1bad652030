"""GraphQL introspection on ``/graphql/v2``: off unless
``FEDERATION_GRAPHQL_INTROSPECTION`` is on.

Why: no Oz client introspects (the schema is Oz's, published), and an introspection
query is the cheapest way for any key holder to map and load the endpoint. ``__typename``
is no introspection: Oz's clients select it in every request, and it keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.settings import load_settings
from federation.store import Store
from tests.conftest import make_settings
from tests.support import World

URL = "/graphql/v2"
QUERIES = {
    "__schema": "{ __schema { queryType { name } types { name } } }",
    "__type": '{ __type(name: "IssueTaskIdentityTokenInput") { inputFields { name } } }',
}


@pytest.fixture
def introspecting(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, graphql_introspection=True)
    app = create_app(settings, store=store, keyring=keyring, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("field", sorted(QUERIES))
def test_introspection_follows_the_setting(
    world: World, introspecting: TestClient, field: str
) -> None:
    refused = world.client.post(URL, json={"query": QUERIES[field]}, headers=world.admin)
    assert refused.status_code == 200, refused.text
    body = refused.json()
    assert "data" not in body, body
    messages = [error["message"] for error in body["errors"]]
    assert all("introspection has been disabled" in message for message in messages), messages
    assert f"'{field}'" in messages[0], messages

    answered = introspecting.post(URL, json={"query": QUERIES[field]}, headers=world.admin)
    assert "errors" not in answered.json(), answered.text
    assert answered.json()["data"][field], answered.text


def test_typename_is_no_introspection(world: World) -> None:
    both = "{ __typename __schema { queryType { name } } }"
    answer = world.client.post(URL, json={"query": both}, headers=world.admin).json()
    assert [error["message"] for error in answer["errors"]] == [
        "GraphQL introspection has been disabled, but the requested query contained the "
        "field '__schema'.",
        "GraphQL introspection has been disabled, but the requested query contained the "
        "field 'queryType'.",
    ]
    typename = world.client.post(URL, json={"query": "{ __typename }"}, headers=world.admin)
    assert typename.json() == {"data": {"__typename": "RootQuery"}}


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().graphql_introspection is False
    monkeypatch.setenv("FEDERATION_GRAPHQL_INTROSPECTION", "on")
    assert load_settings().graphql_introspection is True
