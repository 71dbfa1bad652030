"""issue-token's one door: its lean route reads the body as the framework would (JSON by
content type, the same validation problems) and answers through the issuing pipeline."""

from __future__ import annotations

import json

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from federation.api.schemas import TokenOut
from federation.store import Store
from federation.store.models import IssuedToken
from tests.api.test_errors import assert_problem
from tests.support import World

ISSUE = "/api/v1/federate/issue-token"


def _audited(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(IssuedToken)) or 0)


def test_json_content_types_issue_alike(world: World, store: Store) -> None:
    agent = world.agent()
    body = json.dumps({"run_id": agent.run_id, "audience": "sts.amazonaws.com"})
    answers = []
    for content_type in ("application/json", "application/json; charset=utf-8"):
        headers = {**agent.headers(), "Content-Type": content_type}
        response = world.client.post(ISSUE, content=body, headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    plain, with_charset = answers
    assert set(plain) == set(with_charset)
    assert plain["subject"] == with_charset["subject"] == "user:u1"
    assert plain["jti"] != with_charset["jti"]
    for answer in answers:
        claims = jwt.decode(answer["token"], options={"verify_signature": False})
        assert claims["jti"] == answer["jti"]
    assert _audited(store) == 2


def test_refusals_are_the_same_problems(world: World, client: TestClient) -> None:
    agent = world.agent()
    good = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
    # a body the model refuses is answered as the framework answers any body
    invalid = client.post(ISSUE, json={**good, "duration": 5}, headers=agent.headers())
    assert_problem(invalid, 400, "invalid_request", detail="duration")
    not_json = client.post(
        ISSUE, content=b"{", headers={**agent.headers(), "Content-Type": "application/json"}
    )
    assert_problem(not_json, 400, "invalid_request")
    # a refusal from issuing itself, with the trace id
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


def test_a_repeated_header_is_read_as_the_framework_reads_it(
    world: World, client: TestClient
) -> None:
    """The first value counts, as for preview-token's framework-read ``Header``."""
    agent = world.agent()
    body = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
    for first, second in (("t1", "t9"), ("t9", "t1")):
        headers = [*agent.headers().items(), ("X-Warp-Team-Uid", first)]
        headers.append(("X-Warp-Team-Uid", second))
        issued = client.post(ISSUE, json=body, headers=headers)
        previewed = client.post("/api/v1/federate/preview-token", json=body, headers=headers)
        expected = 200 if first == "t1" else 403
        assert issued.status_code == previewed.status_code == expected, issued.text


def test_bodies_are_refused_as_the_framework_refuses_them(world: World, client: TestClient) -> None:
    """preview-token's body is read by the framework itself: issue-token's reading of the
    same bytes answers the same problem."""
    agent = world.agent()
    good = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
    cases: list[tuple[bytes, str | None]] = [
        (b"", "application/json"),
        (b"{", "application/json"),
        (json.dumps(good).encode(), "text/plain"),
        (json.dumps({**good, "extra": 1}).encode(), "application/json"),
        (json.dumps({**good, "subject_template": ["x" * 65]}).encode(), "application/json"),
        (json.dumps([good]).encode(), "application/json"),
        (json.dumps({**good, "requested_duration_seconds": "60"}).encode(), None),
    ]
    for content, content_type in cases:
        headers = dict(agent.headers())
        if content_type is not None:
            headers["Content-Type"] = content_type
        issued = client.post(ISSUE, content=content, headers=headers)
        previewed = client.post("/api/v1/federate/preview-token", content=content, headers=headers)
        assert issued.status_code == previewed.status_code == 400, (content, issued.text)
        assert issued.json()["detail"] == previewed.json()["detail"], content
    assert _audited_none(client)


def _audited_none(client: TestClient) -> bool:
    store: Store = client.app.state.context.store  # type: ignore[attr-defined]
    return _audited(store) == 0


def test_the_answer_is_the_bytes_of_its_documented_model(world: World, client: TestClient) -> None:
    """issue-token encodes its answer itself: byte for byte what ``TokenOut`` writes."""
    agent = world.agent()
    for audience in ("sts.amazonaws.com", "api://AzureADTokenExchange"):
        response = world.issue(agent, audience=audience, duration="15m")
        assert response.status_code == 200, response.text
        model = TokenOut.model_validate_json(response.content)
        assert response.content == model.model_dump_json().encode()
        assert response.json()["issued_at"].endswith("Z")
