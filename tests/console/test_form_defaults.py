"""What the console's forms offer before anyone types: key types that fit the signed-in
principal, and examples that are placeholders, never values sent as if typed."""

from __future__ import annotations

import html
import re

from tests.console.pages import post_form, sign_in
from tests.support import World

PROVIDER = "projects/42/locations/global/workloadIdentityPools/p1/providers/q1"
TYPE_RADIO = re.compile(r'<input type="radio" name="type" value="(\w+)"( checked)?')


def key_types(page: str) -> tuple[list[str], str | None]:
    """The key types a page's form offers, and the one checked."""
    found = TYPE_RADIO.findall(page)
    checked = [value for value, mark in found if mark]
    return [value for value, _ in found], checked[0] if len(checked) == 1 else None


def field(page: str, name: str) -> dict[str, str]:
    """The attributes of the input named ``name``."""
    tag = re.search(rf'<input [^>]*name="{name}"[^>]*>', page)
    assert tag is not None, f"no input {name}"
    return {key: html.unescape(value) for key, value in re.findall(r'(\w+)="([^"]*)"', tag[0])}


def test_the_admin_key_generates_an_agent_key_as_the_form_stands(world: World) -> None:
    sign_in(world.client, world.admin_key)  # the admin principal is a service account
    page = world.client.get("/console/api-keys").text
    assert key_types(page) == (["agent"], "agent")
    assert field(page, "principal_uid")["placeholder"] == "federation-admin"
    made = post_form(
        world.client,
        "/console/api-keys",
        "/console/api-keys",
        name="deploy",
        type="agent",
        principal_uid="",
        expires_in="30d",
        scopes=["federate"],
    )
    assert made.status_code == 201, made.text
    assert "It will not be shown again" in made.text
    # A form sent without a type takes the signed-in principal's default, too.
    untyped = post_form(
        world.client, "/console/api-keys", "/console/api-keys", name="ci", expires_in="1d"
    )
    assert untyped.status_code == 201, untyped.text


def test_a_user_defaults_to_a_personal_key(world: World) -> None:
    world.principal("ada")
    world.principal("root", email="root@example.com")
    sign_in(world.client, world.api_key("ada"))
    page = world.client.get("/console/api-keys").text
    assert key_types(page) == (["personal"], "personal")  # agent keys need admin
    assert 'name="principal_uid"' not in page
    made = post_form(
        world.client, "/console/api-keys", "/console/api-keys", name="laptop", expires_in="1d"
    )
    assert made.status_code == 201, made.text

    world.client.cookies.clear()
    sign_in(world.client, world.api_key("root", scopes=("admin",)))
    page = world.client.get("/console/api-keys").text
    assert key_types(page) == (["personal", "agent"], "personal")
    assert "placeholder" not in field(page, "principal_uid")


def test_a_service_account_without_admin_is_told_it_makes_no_keys(world: World) -> None:
    world.principal("ci-bot", type="service_account")
    sign_in(world.client, world.api_key("ci-bot"))
    page = world.client.get("/console/api-keys").text
    assert key_types(page) == ([], None)
    assert "Generate key" not in page
    assert "This key cannot create keys" in html.unescape(re.sub(r"\s+", " ", page))


def test_try_it_shows_examples_as_placeholders_and_blanks_in_the_policies(world: World) -> None:
    agent = world.agent()
    sign_in(world.client, world.admin_key)
    empty = world.client.get("/console/try").text
    for name, example in (
        ("aws_account", "111122223333"),
        ("gcp_provider", "projects/123456789012/locations/global/workloadIdentityPools/"),
    ):
        attributes = field(empty, name)
        assert attributes["value"] == ""
        assert attributes["placeholder"].startswith(example)

    page = html.unescape(world.client.get(f"/console/try?run_id={agent.run_id}").text)
    results = page.split('id="claims-heading"', 1)[1]
    assert "111122223333" not in results
    assert "123456789012" not in results
    assert '"Federated": "arn:aws:iam::<AWS account id>:oidc-provider/' in page
    assert (
        '"name": "projects/<project number>/locations/global/workloadIdentityPools/<pool>'
        '/providers/<provider>"' in page
    )
    assert '"member": "principal://iam.googleapis.com/projects/<project number>/' in page
    assert "fill in the AWS account id above" in page

    given = html.unescape(
        world.client.get(
            "/console/try",
            params={
                "run_id": agent.run_id,
                "aws_account": "210987654321",
                "gcp_provider": PROVIDER,
            },
        ).text
    )
    assert '"Federated": "arn:aws:iam::210987654321:oidc-provider/' in given
    assert f'"name": "{PROVIDER}"' in given
    assert "<AWS account id>" not in given

    wrong = html.unescape(
        world.client.get(
            "/console/try", params={"run_id": agent.run_id, "aws_account": "1234"}
        ).text
    )
    assert "An AWS account id is 12 digits" in wrong
