"""Two server processes on one PostgreSQL database, with the database key store: one
keyring, one JWKS, one rotation per period, and every token verifies at either."""

from __future__ import annotations

import contextlib
import itertools
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt

from federation.keys.kek import new_kek
from tests.support import start_server

running = contextlib.contextmanager(start_server)
# A schedule fast enough to watch: a key is published 2 s before it signs and signs
# for 6 s; JWKS caches live 1 s; each replica looks every half second.
FAST = {
    "FEDERATION_KEY_STORE": "database",
    "FEDERATION_JWKS_MAX_AGE": "1",
    "FEDERATION_KEY_LEAD_TIME": "2",
    "FEDERATION_KEY_ROTATION_PERIOD": "6",
    "FEDERATION_ROTATION_CHECK_INTERVAL": "1",
}


def admin_post(url: str, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def keys_of(url: str, key: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{url}/api/v1/keys?limit=500", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    return list(response.json()["items"])


def test_two_replicas_share_keys_rotate_once_and_verify_each_others_tokens(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = {**FAST, "FEDERATION_KEK": new_kek()}
    home = tmp_path / "replicas"
    with (
        running(home, postgres_url, settings) as first,
        running(home, postgres_url, settings) as second,
    ):
        assert first.admin_key == second.admin_key  # one database, one bootstrap key
        admin = first.admin_key
        admin_post(
            first.url, admin, "/api/v1/principals", {"type": "user", "uid": "u1", "teams": ["t1"]}
        )
        key = admin_post(
            first.url,
            admin,
            "/api/v1/api-keys",
            {"name": "k", "principal_uid": "u1", "expires_in": "1d"},
        )["key"]
        run = admin_post(
            second.url, admin, "/api/v1/runs", {"principal_uid": "u1", "state": "INPROGRESS"}
        )
        headers = {
            "Authorization": f"Bearer {key}",
            "X-Warp-Ambient-Workload-Token": run["workload_token"],
        }

        deadline = time.monotonic() + 16
        tokens: list[str] = []
        while time.monotonic() < deadline:
            for server in (first, second):
                answer = httpx.post(
                    f"{server.url}/api/v1/federate/issue-token",
                    json={"run_id": run["run_id"], "audience": "sts.amazonaws.com"},
                    headers=headers,
                    timeout=10,
                )
                assert answer.status_code == 200, answer.text
                tokens.append(answer.json()["token"])
            # Verify everything so far at both replicas, the way a cloud does.
            for server in (first, second):
                discovery = httpx.get(
                    f"{server.url}/.well-known/openid-configuration", timeout=10
                ).json()
                verifier = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False)
                for token in tokens[-6:]:
                    signing_key = verifier.get_signing_key_from_jwt(token)
                    jwt.decode(
                        token, signing_key.key, algorithms=["ES256"], audience="sts.amazonaws.com"
                    )
            time.sleep(0.5)

        # Both serve one JWKS (each notices the other's changes within a second).
        for _ in range(40):
            documents = [
                httpx.get(f"{s.url}/.well-known/jwks.json").json() for s in (first, second)
            ]
            if documents[0] == documents[1]:
                break
            time.sleep(0.1)
        assert documents[0] == documents[1]
        es256 = sorted(
            (item for item in keys_of(first.url, admin) if item["alg"] == "ES256"),
            key=lambda item: item["activates_at"],
        )
        assert len(es256) >= 3  # at least two scheduled rotations in 16 s
        starts = [datetime.fromisoformat(item["activates_at"]) for item in es256]
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]
        assert all(gap >= 5 for gap in gaps), gaps  # one successor per period, not one per replica
        assert len({jwt.get_unverified_header(token)["kid"] for token in tokens}) >= 3
        logs = first.log.read_text() + second.log.read_text()
        published = logs.count("rotation: published ES256")
        assert published == len(es256) - 1
