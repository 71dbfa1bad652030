"""AWS session tags in the token: which run attributes, and AWS's limits."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from tests.support import World

CLAIM = "https://aws.amazon.com/tags"


def claims_of(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def test_named_run_attributes_become_single_valued_tags(world: World) -> None:
    agent = world.agent(environment="prod", skill_spec="acme/infra:deploy")
    response = world.issue(
        agent, aws_session_tags=["environment", "team", "principal", "skill_spec"]
    )
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["token"])[CLAIM] == {
        "principal_tags": {
            "environment": ["prod"],
            "team": ["t1"],
            "principal": ["user:u1"],
            "skill_spec": ["acme/infra:deploy"],
        }
    }


def test_no_tags_unless_asked(world: World) -> None:
    agent = world.agent()
    assert CLAIM not in claims_of(world.issue(agent).json()["token"])


@pytest.mark.parametrize(
    ("tags", "attributes", "detail"),
    [
        (["department"], {}, "unknown AWS session tag 'department'"),
        (["host"], {"host": None}, "'host' has no value"),
        (["agent_name"], {"agent_name": "nightly#1"}, "characters AWS tags do not allow"),
        (["agent_name"] * 17, {}, "aws_session_tags"),
    ],
)
def test_tags_aws_would_refuse_are_refused_here(
    world: World, tags: list[str], attributes: dict[str, Any], detail: str
) -> None:
    agent = world.agent(**attributes)
    response = world.issue(agent, aws_session_tags=tags)
    assert response.status_code == 400
    assert detail in response.json()["detail"]
