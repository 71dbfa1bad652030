"""Two `federation serve` processes on one PostgreSQL database: a change made through one
replica is refused by the other on its very next request (docs/operating.md, Replicas and
PostgreSQL: no replica caches an API key, a run or a team).

A deleted API key answers 401; a run moved to a finished state answers 422
``operation_not_supported``. A team cannot be changed through the API (no route moves a
principal or a run to another team), so there is no team case here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx

from federation.keys.kek import new_kek
from tests.integration.test_replicas import admin_post
from tests.integration.test_store_outage import NO_LIMITS
from tests.support import LiveServer, start_server

running = contextlib.contextmanager(start_server)
ISSUE = "/api/v1/federate/issue-token"


def _agent(replica: LiveServer, uid: str) -> tuple[str, str, dict[str, str], str]:
    """A principal, its federate key and an INPROGRESS run, made through ``replica``:
    (key id, run id, issue-token headers, admin key)."""
    admin = replica.admin_key
    admin_post(
        replica.url, admin, "/api/v1/principals", {"type": "user", "uid": uid, "teams": ["t1"]}
    )
    key = admin_post(
        replica.url,
        admin,
        "/api/v1/api-keys",
        {"name": "k", "principal_uid": uid, "expires_in": "1d"},
    )
    run = admin_post(
        replica.url, admin, "/api/v1/runs", {"principal_uid": uid, "state": "INPROGRESS"}
    )
    headers = {
        "Authorization": f"Bearer {key['key']}",
        "X-Warp-Ambient-Workload-Token": run["workload_token"],
    }
    return str(key["id"]), str(run["run_id"]), headers, admin


def _issue(replica: LiveServer, run_id: str, headers: dict[str, str]) -> httpx.Response:
    body = {"run_id": run_id, "audience": "sts.amazonaws.com"}
    return httpx.post(f"{replica.url}{ISSUE}", json=body, headers=headers, timeout=10)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (
        body["type"] == f"/reference/api-and-sdk/troubleshooting/errors/{code.replace('_', '-')}/"
    )
    return body


def test_a_change_at_one_replica_is_seen_by_the_other_on_its_next_request(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = {**NO_LIMITS, "FEDERATION_KEY_STORE": "database", "FEDERATION_KEK": new_kek()}
    home = tmp_path / "replicas"
    with running(home, postgres_url, settings) as a, running(home, postgres_url, settings) as b:
        admin = {"Authorization": f"Bearer {a.admin_key}"}

        # A deleted API key: B has just answered it, then refuses it at once.
        key_id, run_id, headers, _ = _agent(a, "u1")
        assert _issue(b, run_id, headers).status_code == 200
        deleted = httpx.delete(f"{a.url}/api/v1/api-keys/{key_id}", headers=admin, timeout=10)
        assert deleted.status_code == 204, deleted.text
        refused = _problem(_issue(b, run_id, headers), 401, "authentication_required")
        assert "detail" not in refused

        # A finished run: B has just issued for it, then refuses it at once.
        _, run_id, headers, _ = _agent(a, "u2")
        assert _issue(b, run_id, headers).status_code == 200
        moved = httpx.patch(
            f"{a.url}/api/v1/runs/{run_id}", json={"state": "SUCCEEDED"}, headers=admin, timeout=10
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["state"] == "SUCCEEDED"
        _problem(_issue(b, run_id, headers), 422, "operation_not_supported")
