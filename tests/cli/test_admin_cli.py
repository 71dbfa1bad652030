"""`federation init`, the management commands, `decode`/`verify`, and start-up failures:
the entry point's ``main`` in process against the real application served on loopback;
`serve`, which runs until stopped, as a real process (stopped with a deadline)."""

from __future__ import annotations

import base64
import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.cli.helpers import (
    assert_error_line,
    home_env,
    initialized_server,
    invoke_cli,
    invoke_federation,
    issue_over_http,
    run_federation,
    serve_home,
    unique,
    verify_with_pyjwt,
)
from tests.support import Agent, LiveServer, LiveWorld, World, free_port, serve_issuer

AWS = "sts.amazonaws.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One issuer for the tests that only add their own principals: `init`, then served."""
    with initialized_server(tmp_path_factory.mktemp("issuer")) as server:
        yield server


def printed_keys(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("wk-")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def jwks_kids(server: LiveServer) -> set[str]:
    jwks = httpx.get(f"{server.url}/.well-known/jwks.json", timeout=10).json()
    return {key["kid"] for key in jwks["keys"]}


def tampered(token: str) -> str:
    """The same header and signature over different claims."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "user:mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


# ---- init -----------------------------------------------------------------------------


def test_init_is_idempotent_and_reset_replaces_the_admin_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key_file = home / "var" / "admin-api-key"
    env = home_env(home)
    first = invoke_federation(home, env, "init")
    assert first.returncode == 0, first.stderr
    [old_key] = printed_keys(first.stdout)
    assert key_file.read_text().strip() == old_key
    assert mode(key_file) == 0o600

    with serve_home(home, env) as server:
        admin = World.live(server)
        again = invoke_cli(server, "init")
        assert again.returncode == 0, again.stderr
        assert "wk-" not in again.stdout + again.stderr
        assert key_file.read_text().strip() == old_key
        assert admin.status_of(old_key) == 200

        reset = invoke_cli(server, "init", "--reset-admin-key")
        assert reset.returncode == 0, reset.stderr
        [new_key] = printed_keys(reset.stdout)
        assert new_key != old_key
        assert key_file.read_text().strip() == new_key
        assert mode(key_file) == 0o600
        assert admin.status_of(new_key) == 200
        assert admin.status_of(old_key) == 401
        refused = invoke_cli(server, "whoami", env={"WARP_API_KEY": old_key})
        assert_error_line(refused, 77, old_key)


# ---- whoami and the admin key file ----------------------------------------------------


def test_whoami_as_the_admin_key_file_and_as_a_user(server: LiveServer, admin: LiveWorld) -> None:
    as_admin = invoke_cli(server, "whoami", "--output-format", "json")  # WARP_API_KEY is unset
    assert as_admin.returncode == 0, as_admin.stderr
    me = json.loads(as_admin.stdout)
    assert me["scopes"] == ["admin"]
    assert me["key"]["masked_key"] == f"wk-**{server.admin_key[-4:]}"
    assert server.admin_key not in as_admin.stdout

    agent = admin.platform_agent()
    as_user = invoke_cli(server, "whoami", env={"WARP_API_KEY": agent.key})
    assert as_user.returncode == 0, as_user.stderr
    fields = dict(line.split(None, 1) for line in as_user.stdout.splitlines())
    assert fields["uid"] == agent.uid
    assert fields["type"] == "user"
    assert fields["teams"] == "platform"


def test_a_set_key_wins_over_the_admin_key_file(server: LiveServer, admin: LiveWorld) -> None:
    agent = admin.platform_agent()
    result = invoke_cli(server, "principals", "list", env={"WARP_API_KEY": agent.key})
    assert_error_line(result, 77, agent.key, server.admin_key)


def test_no_key_and_no_admin_key_file(server: LiveServer, tmp_path: Path) -> None:
    env = {"FEDERATION_ADMIN_KEY_FILE": str(tmp_path / "missing")}
    result = invoke_cli(server, "principals", "list", env=env)
    assert result.returncode == 2
    assert "WARP_API_KEY" in result.stderr
    assert "federation init" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# ---- principals, API keys, runs -------------------------------------------------------


def test_principals_create_list_get(server: LiveServer, admin: LiveWorld) -> None:
    uid = unique("grace")
    created = invoke_cli(
        server, "principals", "create", "--type", "user", "--uid", uid, "--email",
        f"{uid}@example.com", "--display-name", "Grace", "--team", "platform", "--team", "ops",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    stored = admin.request("GET", f"/api/v1/principals/{uid}").json()
    assert stored["teams"] == ["platform", "ops"]
    assert stored["email"] == f"{uid}@example.com"
    assert uid in created.stdout

    listed = invoke_cli(server, "principals", "list", "--limit", "500")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:2] == ["TYPE", "UID"]
    assert ["user", uid] in [row.split()[:2] for row in rows]

    got = invoke_cli(server, "principals", "get", uid, "--output-format", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == stored

    missing = invoke_cli(server, "principals", "get", unique("nobody"))
    assert "not found" in assert_error_line(missing, 1, server.admin_key)


def test_api_keys_create_list_delete(server: LiveServer, admin: LiveWorld) -> None:
    uid = unique("lin")
    admin.principal(uid, teams=("platform",), email=f"{uid}@example.com")
    created = invoke_cli(server, "api-keys", "create", "--name", "laptop", "--principal", uid)
    assert created.returncode == 0, created.stderr
    [raw] = created.stdout.splitlines()  # the raw key, alone on stdout
    assert raw.startswith("wk-")
    assert "not shown again" in created.stderr
    assert raw not in created.stderr
    assert admin.status_of(raw) == 200

    masked = f"wk-**{raw[-4:]}"
    table = invoke_cli(server, "api-keys", "list", "--principal", uid)
    assert table.returncode == 0, table.stderr
    assert masked in table.stdout
    assert raw not in table.stdout

    listed = invoke_cli(server, "api-keys", "list", "--principal", uid, "--output-format", "json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)["items"]
    assert item["masked_key"] == masked
    assert item["name"] == "laptop"
    assert "key" not in item
    assert raw not in listed.stdout

    deleted = invoke_cli(server, "api-keys", "delete", item["id"])
    assert deleted.returncode == 0, deleted.stderr
    assert admin.status_of(raw) == 401
    after = admin.request("GET", "/api/v1/api-keys", params={"principal_uid": uid}).json()
    assert after["items"] == []


def test_runs_create_list_get_set_state(server: LiveServer, admin: LiveWorld) -> None:
    uid = unique("ada")
    admin.principal(uid, teams=("platform",), email=f"{uid}@example.com")
    key = admin.api_key(uid)
    created = invoke_cli(
        server, "runs", "create", "--principal", uid, "--team", "platform", "--environment",
        "staging", "--agent-name", "nightly-deploy", "--skill-spec", "acme/infra:deploy",
        "--host", "warp", "--state", "INPROGRESS", "--output-format", "json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    run = json.loads(created.stdout)
    assert run["state"] == "INPROGRESS"
    assert (run["environment"], run["skill_spec"]) == ("staging", "acme/infra:deploy")
    agent = Agent(uid=uid, key=key, run_id=run["run_id"], workload_token=run["workload_token"])
    issued = issue_over_http(server, agent)  # the printed workload token is the real one
    assert verify_with_pyjwt(issued["token"], server.url, AWS)["agent_name"] == "nightly-deploy"

    got = invoke_cli(server, "runs", "get", agent.run_id)
    assert got.returncode == 0, got.stderr
    assert dict(line.split(None, 1) for line in got.stdout.splitlines())["state"] == "INPROGRESS"
    assert agent.workload_token not in got.stdout

    listed = invoke_cli(
        server,
        "runs",
        "list",
        "--principal",
        uid,
        "--state",
        "INPROGRESS",
        "--output-format",
        "json",
    )
    assert listed.returncode == 0, listed.stderr
    assert [item["run_id"] for item in json.loads(listed.stdout)["items"]] == [agent.run_id]

    moved = invoke_cli(
        server, "runs", "set-state", agent.run_id, "SUCCEEDED", "--output-format", "json"
    )
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["state"] == "SUCCEEDED"
    assert admin.request("GET", f"/api/v1/runs/{agent.run_id}").json()["state"] == "SUCCEEDED"

    back = invoke_cli(server, "runs", "set-state", agent.run_id, "INPROGRESS")
    assert "finished" in assert_error_line(back, 1, server.admin_key)


# ---- signing keys and the audit log ---------------------------------------------------


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    """An issuer of the test's own: rotating its keys changes what it publishes."""
    with initialized_server(tmp_path / "server") as server:
        yield server


def test_keys_list_local_and_rotate(fresh_server: LiveServer) -> None:
    listed = invoke_cli(fresh_server, "keys", "list", "--output-format", "json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert {item["kid"] for item in items} == jwks_kids(fresh_server)
    assert sorted(item["alg"] for item in items) == ["ES256", "RS256"]

    no_server = {"FEDERATION_URL": f"http://127.0.0.1:{free_port()}"}
    local = invoke_cli(
        fresh_server, "keys", "list", "--local", "--output-format", "json", env=no_server
    )
    assert local.returncode == 0, local.stderr
    assert {item["kid"] for item in json.loads(local.stdout)["items"]} == jwks_kids(fresh_server)

    rotated = invoke_cli(
        fresh_server, "keys", "rotate", "--alg", "ES256", "--output-format", "json"
    )
    assert rotated.returncode == 0, rotated.stderr
    [new] = json.loads(rotated.stdout)["items"]
    assert new["alg"] == "ES256"
    assert new["kid"] not in {item["kid"] for item in items}
    assert new["kid"] in jwks_kids(fresh_server)  # published before it signs

    table = invoke_cli(fresh_server, "keys", "list")
    assert table.returncode == 0, table.stderr
    assert [row for row in table.stdout.splitlines() if row.startswith(new["kid"])]


def test_tokens_list_shows_the_audit_row_not_the_token(
    server: LiveServer, admin: LiveWorld
) -> None:
    agent = admin.platform_agent()
    issued = issue_over_http(server, agent)
    jti = verify_with_pyjwt(issued["token"], server.url, AWS)["jti"]

    listed = invoke_cli(
        server, "tokens", "list", "--run-id", agent.run_id, "--output-format", "json"
    )
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["items"]
    assert (row["jti"], row["run_id"]) == (jti, agent.run_id)
    assert issued["token"] not in listed.stdout
    table = invoke_cli(server, "tokens", "list", "--run-id", agent.run_id)
    assert table.returncode == 0, table.stderr
    assert jti in table.stdout
    assert issued["token"] not in table.stdout


# ---- decode and verify ----------------------------------------------------------------


def test_decode_prints_header_and_claims_and_says_it_did_not_verify(
    server: LiveServer, admin: LiveWorld
) -> None:
    token = issue_over_http(server, admin.platform_agent())["token"]
    for shown in (token, tampered(token)):
        result = invoke_cli(server, "decode", "-", input=shown)
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["header"] == jwt.get_unverified_header(shown)
        assert document["claims"] == jwt.decode(shown, options={"verify_signature": False})
        assert "not verified" in result.stderr


def test_verify_accepts_a_good_token(server: LiveServer, admin: LiveWorld) -> None:
    token = issue_over_http(server, admin.platform_agent())["token"]
    result = invoke_cli(server, "verify", token, "--audience", AWS)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["claims"] == verify_with_pyjwt(token, server.url, AWS)
    assert "verified" in result.stderr


@pytest.mark.parametrize("fault", ["wrong-audience", "tampered"])
def test_verify_refuses(server: LiveServer, admin: LiveWorld, fault: str) -> None:
    token = issue_over_http(server, admin.platform_agent())["token"]
    if fault == "tampered":
        token, audience = tampered(token), AWS
    else:
        audience = "api://AzureADTokenExchange"
    result = invoke_cli(server, "verify", token, "--audience", audience)
    assert_error_line(result, 1)


def test_verify_refuses_another_issuers_token(server: LiveServer, tmp_path: Path) -> None:
    with serve_issuer(tmp_path / "other") as other:
        token = issue_over_http(other, World.live(other).platform_agent())["token"]
        assert verify_with_pyjwt(token, other.url, AWS)["iss"] == other.url
    result = invoke_cli(server, "verify", token, "--audience", AWS)
    assert_error_line(result, 1)


# ---- start-up failures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home where `federation init` ran: database, keys, admin key file."""
    home: Path = tmp_path_factory.mktemp("initialized")
    result = invoke_federation(home, home_env(home), "init")
    assert result.returncode == 0, result.stderr
    return home


@pytest.fixture
def home(initialized: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(initialized, copy)
    return copy


def refused_start(home: Path, command: str, **env: str) -> str:
    """Run `command` and return its one-line error: `init` in process, `serve` as a
    process (one that serves after all is killed after 30 s, and the test fails)."""
    settings = {**home_env(home), **env}
    if command == "serve":
        result = run_federation(home, settings, command, timeout=30)
    else:
        result = invoke_federation(home, settings, command)
    return assert_error_line(result, 78)


@pytest.mark.parametrize("command", ["serve", "init"])
@pytest.mark.parametrize("fault", ["corrupt", "group-readable"])
def test_a_bad_key_file_stops_start_up(home: Path, command: str, fault: str) -> None:
    pem = sorted((home / "keys").glob("*.pem"))[0]
    if fault == "corrupt":
        pem.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    else:
        pem.chmod(0o640)
    assert str(pem) in refused_start(home, command)


def test_serve_without_a_schema_says_to_run_init(home: Path, tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path}/empty.db"
    message = refused_start(home, "serve", FEDERATION_DATABASE_URL=empty)
    assert "federation init" in message


def test_a_plain_http_public_issuer_is_refused(home: Path) -> None:
    message = refused_start(home, "serve", FEDERATION_ISSUER="http://issuer.example.com")
    assert "FEDERATION_ISSUER" in message
    assert "https" in message
