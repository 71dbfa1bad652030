"""A real server's whole log (the access log's JSON lines, its own text lines, the HTTP
server's) and its answers repeat no secret sent where it does not belong."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx

from federation.domain.secret_shapes import REDACTED
from tests.api.secret_echo_cases import each_shape, telltales
from tests.support import World, bearer, start_server

running = contextlib.contextmanager(start_server)
ISSUE = "/api/v1/federate/issue-token"
AWS = "sts.amazonaws.com"
MUTATION = (
    "mutation IssueTaskIdentityToken($input: IssueTaskIdentityTokenInput!) {"
    " issueTaskIdentityToken(requestContext: {osContext: {}, clientContext: {}},"
    " input: $input) { __typename ... on UserFacingError { error { __typename message"
    " ... on PlatformError { detail } } } } }"
)


def misplaced(secret: str, admin: dict[str, str], agent: dict[str, str], run_id: str) -> list[Any]:
    """Requests with ``secret`` where it does not belong: (method, path, options)."""
    graphql = {"query": MUTATION, "variables": {"input": {"audience": AWS}}}
    return [
        ("GET", f"/api/v1/runs/{secret}", {"headers": admin}),
        ("GET", f"/api/v1/runs/{secret}", {}),
        ("GET", f"/{secret}", {}),
        ("GET", "/api/v1/runs", {"headers": admin, "params": {"environment": secret}}),
        ("POST", ISSUE, {"headers": agent, "json": {"run_id": secret, "audience": AWS}}),
        ("POST", ISSUE, {"headers": agent, "json": {"run_id": run_id, "audience": secret}}),
        ("POST", ISSUE, {"headers": agent, "json": {"run_id": run_id, "audience": AWS, secret: 1}}),
        (
            "POST",
            ISSUE,
            {"headers": agent, "json": {"run_id": run_id, "audience": AWS, "team_uid": secret}},
        ),
        (
            "POST",
            "/graphql/v2",
            {
                "headers": {**agent, "X-Warp-Cloud-Agent-ID": run_id, "X-Warp-Team-Uid": secret},
                "json": graphql,
            },
        ),
        ("GET", f"/console/runs/{secret}", {}),
    ]


def test_a_live_servers_answers_and_log_repeat_no_misplaced_secret(tmp_path: Path) -> None:
    sent: list[str] = []
    echoed: list[str] = []
    with running(tmp_path / "server", f"sqlite:///{tmp_path}/server/var/federation.db") as server:
        world = World.live(server)
        agent = world.agent("u1")
        for secret in each_shape().values():
            sent.append(secret)
            for method, path, options in misplaced(
                secret, bearer(server.admin_key), agent.headers(), agent.run_id
            ):
                answer = httpx.request(method, f"{server.url}{path}", timeout=10, **options)
                shown = (
                    answer.text + "\n" + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
                )
                if any(part in shown for part in telltales(secret)):
                    echoed.append(f"{method} {path}: {answer.status_code}")
        log_path = server.log
    assert not echoed
    log = log_path.read_text()  # the server has stopped: every line is written
    for secret in sent:
        assert not [part for part in telltales(secret) if part in log], "a secret is in the log"
    paths = [json.loads(line).get("path") for line in log.splitlines() if line.startswith("{")]
    assert f"/api/v1/runs/{REDACTED}" in paths  # the request was logged, the secret hidden
    assert f"/console/runs/{REDACTED}" in paths
