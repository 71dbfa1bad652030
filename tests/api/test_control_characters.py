"""Control characters in looked-up values are a 400, never a database error."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import DataError

from federation.api.problems import as_federation_error
from federation.errors import InvalidRequest
from tests.support import World


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/runs/a%00b", None),
        ("DELETE", "/api/v1/api-keys/a%00b", None),
        ("GET", "/api/v1/tokens?audience=a%00b", None),
        ("GET", "/api/v1/tokens?run_id=a%00b", None),
        ("POST", "/api/v1/federate/issue-token", {"run_id": "a\x00b", "audience": "sts"}),
        ("POST", "/api/v1/federate/issue-token", {"run_id": "r1", "audience": "a\x00b"}),
    ],
)
def test_nul_bytes_are_invalid_requests(
    world: World, client: TestClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = client.request(method, path, json=body, headers=world.admin)
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("/invalid-request/")


def test_a_value_the_database_refuses_is_the_requests_fault() -> None:
    refused = DataError("SELECT ...", {"run_id": "a\x00b"}, ValueError("NUL"))
    error = as_federation_error(refused, "trace")
    assert isinstance(error, InvalidRequest)
    assert "NUL" not in error.message
    assert "a\x00b" not in error.message


def test_a_json_boolean_is_no_duration(world: World) -> None:
    agent = world.agent()
    response = world.issue(agent, requested_duration_seconds=True)
    assert response.status_code == 400
