"""The console's pages over the test client: what each shows and does, through the API."""

from __future__ import annotations

import html
import re

from tests.console.pages import csrf_token, post_form, sign_in
from tests.support import World, bearer

GCP = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"


def text(page: str) -> str:
    """A page's text without tags, entities decoded: what a reader sees."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_a_new_key_is_shown_once_then_only_masked(world: World) -> None:
    world.principal("ada")
    sign_in(world.client, world.api_key("ada"))
    made = post_form(
        world.client,
        "/console/api-keys",
        "/console/api-keys",
        name="laptop",
        type="personal",
        expires_in="1d",
        scopes=["federate"],
    )
    assert made.status_code == 201
    raw = re.search(r'value="(wk-[A-Za-z0-9_-]{43})"', made.text)
    assert raw is not None
    key = raw.group(1)
    assert "It will not be shown again" in made.text
    assert made.headers["Cache-Control"] == "no-store"
    assert world.client.get("/api/v1/whoami", headers=bearer(key)).status_code == 200
    for path in ("/console/api-keys", "/console/try", "/console/signing-keys"):
        assert key not in world.client.get(path).text
    listed = text(world.client.get("/console/api-keys").text)
    assert f"wk-**{key[-4:]}" in listed
    assert "laptop" in listed


def test_a_refused_key_reads_as_the_apis_message_and_keeps_the_form(world: World) -> None:
    world.principal("ada")
    sign_in(world.client, world.api_key("ada"))
    refused = post_form(
        world.client,
        "/console/api-keys",
        "/console/api-keys",
        name="",
        type="personal",
        expires_in="1d",
    )
    assert refused.status_code == 400
    shown = text(refused.text)
    assert "The request contains invalid or missing parameters." in shown
    assert "name" in shown
    assert re.search(r'<option value="1d" selected>', refused.text)
    longer = post_form(
        world.client,
        "/console/api-keys",
        "/console/api-keys",
        name="forever",
        type="personal",
        expires_in="never",
        scopes=["federate", "admin"],
    )
    assert longer.status_code == 403
    assert "Traceback" not in longer.text


def test_deleting_the_sessions_own_key_signs_out(world: World) -> None:
    world.principal("ada")
    key = world.api_key("ada", name="mine")
    sign_in(world.client, key)
    (key_id,) = {
        k["id"] for k in world.client.get("/api/v1/api-keys", headers=bearer(key)).json()["items"]
    }
    confirm = world.client.get(f"/console/api-keys/{key_id}/delete")
    assert "you will be signed out" in text(confirm.text)
    deleted = world.client.post(
        f"/console/api-keys/{key_id}/delete",
        data={"csrf_token": csrf_token(confirm.text)},
        follow_redirects=False,
    )
    assert deleted.headers["location"] == "/console/api-keys?notice=key-deleted"
    after = world.client.get("/console/api-keys", follow_redirects=False)
    assert after.status_code == 303
    assert after.headers["location"] == "/console/sign-in?notice=expired"
    assert world.client.get("/api/v1/whoami", headers=bearer(key)).status_code == 401


def test_runs_filter_by_state_principal_and_environment(world: World) -> None:
    world.principal("ada")
    world.principal("bob", email="bob@example.com")
    prod = world.run("ada", environment="prod")["run_id"]
    queued = world.run("ada", environment="dev", state="QUEUED")["run_id"]
    bobs = world.run("bob", environment="prod")["run_id"]
    sign_in(world.client, world.admin_key)

    def shown(query: str) -> set[str]:
        page = world.client.get(f"/console/runs?{query}").text
        return {run for run in (prod, queued, bobs) if run in page}

    assert shown("") == {prod, queued, bobs}
    assert shown("state=QUEUED") == {queued}
    assert shown("principal_uid=bob") == {bobs}
    assert shown("environment=prod") == {prod, bobs}
    assert shown("environment=prod&principal_uid=ada") == {prod}


def test_the_runs_list_pages_with_a_cursor(world: World) -> None:
    world.principal("ada")
    made = [world.run("ada")["run_id"] for _ in range(51)]
    sign_in(world.client, world.admin_key)
    first = world.client.get("/console/runs").text
    link = re.search(r'href="(/console/runs\?[^"]*cursor=[^"]+)"', first)
    assert link is not None
    second = world.client.get(html.unescape(link.group(1))).text
    assert made[0] in second
    assert made[0] not in first
    assert made[-1] in first


def test_a_run_shows_its_tokens_and_subjects(world: World) -> None:
    agent = world.agent(environment="prod")
    issued = world.issue(agent).json()
    other = world.agent("u2", environment="dev")
    world.issue(other)
    sign_in(world.client, world.admin_key)
    page = text(world.client.get(f"/console/runs/{agent.run_id}").text)
    assert issued["jti"] in page
    assert "environment:prod" in page
    assert other.run_id not in page
    assert issued["token"] not in page


def test_issued_tokens_filter_and_never_show_a_token(world: World) -> None:
    agent = world.agent()
    aws = world.issue(agent).json()
    gcp = world.issue(agent, audience=GCP).json()
    sign_in(world.client, world.admin_key)
    everything = world.client.get("/console/tokens").text
    assert aws["jti"] in everything
    assert gcp["jti"] in everything
    assert everything.index(gcp["jti"]) < everything.index(aws["jti"])  # newest first
    assert aws["token"] not in everything
    assert gcp["token"] not in everything
    only_gcp = world.client.get("/console/tokens", params={"audience": GCP}).text
    assert gcp["jti"] in only_gcp
    assert aws["jti"] not in only_gcp
    nobody = world.client.get("/console/tokens", params={"principal_uid": "nobody"}).text
    assert "No tokens match." in nobody


def test_an_admin_rotates_from_the_console(world: World) -> None:
    sign_in(world.client, world.admin_key)
    before = world.client.get("/api/v1/keys", headers=world.admin).json()["items"]
    rotated = post_form(
        world.client, "/console/signing-keys", "/console/signing-keys/rotate", alg="RS256"
    )
    assert rotated.headers["location"] == "/console/signing-keys?notice=rotated"
    after = world.client.get("/api/v1/keys", headers=world.admin).json()["items"]
    new = [key for key in after if key["kid"] not in {k["kid"] for k in before}]
    assert [key["alg"] for key in new] == ["RS256"]
    page = world.client.get("/console/signing-keys?notice=rotated").text
    assert new[0]["kid"] in page
    assert "they sign after the lead time" in page


def test_try_it_explains_what_issue_token_would_refuse(world: World) -> None:
    agent = world.agent(host=None, state="SUCCEEDED")
    sign_in(world.client, world.admin_key)
    finished = text(world.client.get(f"/console/try?run_id={agent.run_id}").text)
    assert "a finished run gets no tokens" in finished
    assert f"user:{agent.uid}" in finished
    missing = world.client.get(f"/console/try?run_id={agent.run_id}&subject_template=host")
    assert "The request contains invalid or missing parameters." in text(missing.text)
    assert "host" in text(missing.text)
    unknown = world.client.get("/console/try?run_id=no-such-run")
    assert "run no-such-run not found" in text(unknown.text)


def test_try_it_shows_a_gcp_limit_as_a_message(world: World) -> None:
    agent = world.agent(environment="e" * 120)
    sign_in(world.client, world.admin_key)
    page = world.client.get(
        "/console/try",
        params={
            "run_id": agent.run_id,
            "audience": "sts.amazonaws.com",
            "subject_template": "environment principal",
        },
    )
    shown = text(page.text)
    assert "environment:" + "e" * 120 in shown  # AWS takes it
    assert "may not exceed 127 bytes" in shown  # GCP's google.subject does not
