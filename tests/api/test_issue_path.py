"""issue-token's two doors: ``IssueTokenMiddleware`` answers well-formed JSON requests
before the framework routes them; the route answers the rest. Both must answer alike."""

from __future__ import annotations

import json

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from federation.store import Store
from federation.store.models import IssuedToken
from tests.api.test_errors import assert_problem
from tests.support import World

ISSUE = "/api/v1/federate/issue-token"


def _audited(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(IssuedToken)) or 0)


def test_both_doors_issue_the_same_token(world: World, store: Store) -> None:
    agent = world.agent()
    body = json.dumps({"run_id": agent.run_id, "audience": "sts.amazonaws.com"})
    answers = []
    for content_type in ("application/json", "application/json; charset=utf-8"):
        headers = {**agent.headers(), "Content-Type": content_type}
        response = world.client.post(ISSUE, content=body, headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    fast, routed = answers
    assert set(fast) == set(routed)
    assert fast["subject"] == routed["subject"] == "user:u1"
    assert fast["jti"] != routed["jti"]
    for answer in answers:
        claims = jwt.decode(answer["token"], options={"verify_signature": False})
        assert claims["jti"] == answer["jti"]
    assert _audited(store) == 2


def test_refusals_are_the_same_problems(world: World, client: TestClient) -> None:
    agent = world.agent()
    good = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
    # a body the model refuses goes on to the route, which answers as for any body
    invalid = client.post(ISSUE, json={**good, "duration": 5}, headers=agent.headers())
    assert_problem(invalid, 400, "invalid_request", detail="duration")
    not_json = client.post(
        ISSUE, content=b"{", headers={**agent.headers(), "Content-Type": "application/json"}
    )
    assert_problem(not_json, 400, "invalid_request")
    # a refusal from issuing itself, answered by the middleware, with the trace id
    traced = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    unknown = client.post(
        ISSUE,
        json=good,
        headers={
            **agent.headers(),
            "Authorization": "Bearer wk-" + "A" * 43,
            "traceparent": traced,
        },
    )
    problem = assert_problem(unknown, 401, "authentication_required", detail=None)
    assert unknown.headers["WWW-Authenticate"] == "Bearer"
    assert problem["trace_id"] == "ab" * 16
    missing = client.post(ISSUE, json={**good, "run_id": "nope"}, headers=agent.headers())
    assert_problem(missing, 404, "resource_not_found", detail="nope")


def test_a_repeated_header_goes_to_the_route(world: World, client: TestClient) -> None:
    agent = world.agent()
    headers = [(name, value) for name, value in agent.headers().items()]
    headers += [("X-Warp-Team-Uid", "t1"), ("X-Warp-Team-Uid", "t1")]
    response = client.post(
        ISSUE, json={"run_id": agent.run_id, "audience": "sts.amazonaws.com"}, headers=headers
    )
    assert response.status_code == 200, response.text
