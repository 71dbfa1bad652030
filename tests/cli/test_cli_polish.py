"""The CLI finds a local server on any port, answers a bare group with its help, speaks
of its own flags and variables, titles its errors by what happened, groups and documents
its help, and keeps its exit code when the reader of its output goes away."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from federation.cli import cli
from tests.cli.helpers import agent_env, assert_error_line, invoke_main, issue_over_http
from tests.support import Agent, LiveServer, LiveWorld, federation_command, free_port

AWS = "sts.amazonaws.com"


def without_url(server: LiveServer) -> dict[str, str]:
    """The server's environment as `make run` leaves a second terminal: its port, no URL."""
    return {name: value for name, value in server.env.items() if name != "FEDERATION_URL"}


def run_main(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return invoke_main(*args, env=env, cwd=cwd)


# ---- A: the CLI finds a local server on any port ---------------------------------------


def test_the_cli_finds_the_server_from_federation_port(server: LiveServer) -> None:
    env = {**without_url(server), "WARP_API_KEY": server.admin_key}
    assert env["FEDERATION_PORT"] != "8080"

    result = run_main(env, "whoami", "--output-format", "json", cwd=server.home)

    assert result.returncode == 0, result.stderr
    assert "admin" in json.loads(result.stdout)["scopes"]


def test_a_wildcard_host_is_reached_through_loopback(server: LiveServer) -> None:
    every = "0.0.0.0"  # noqa: S104 - where a server listens, not this test
    env = {**without_url(server), "FEDERATION_HOST": every, "WARP_API_KEY": server.admin_key}

    result = run_main(env, "whoami", cwd=server.home)

    assert result.returncode == 0, result.stderr


def test_a_loopback_issuer_is_reached_when_no_port_is_set(server: LiveServer) -> None:
    env = {
        **{k: v for k, v in without_url(server).items() if k != "FEDERATION_PORT"},
        "FEDERATION_ISSUER": server.url,
        "WARP_API_KEY": server.admin_key,
    }

    result = run_main(env, "whoami", cwd=server.home)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("setting", "origin"),
    [
        ("FEDERATION_PORT", "from FEDERATION_PORT"),
        ("FEDERATION_HOST and FEDERATION_PORT", "from FEDERATION_HOST and FEDERATION_PORT"),
        ("FEDERATION_ISSUER", "from FEDERATION_ISSUER"),
        ("FEDERATION_URL", "from FEDERATION_URL"),
        ("--url", "from --url"),
    ],
)
def test_an_unreachable_issuer_names_the_url_and_where_it_came_from(
    tmp_path: Path, setting: str, origin: str
) -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    env = {"WARP_API_KEY": "wk-" + "k" * 43}
    args: tuple[str, ...] = ()
    if setting == "FEDERATION_PORT":
        env["FEDERATION_PORT"] = str(port)
    elif setting == "FEDERATION_HOST and FEDERATION_PORT":
        env.update(FEDERATION_HOST="127.0.0.1", FEDERATION_PORT=str(port))
    elif setting == "FEDERATION_ISSUER":
        env["FEDERATION_ISSUER"] = url
    elif setting == "FEDERATION_URL":
        env["FEDERATION_URL"] = url
    else:
        args = ("--url", url)

    result = run_main(env, *args, "whoami", cwd=tmp_path)

    message = assert_error_line(result, 75, env["WARP_API_KEY"])
    assert message.startswith(f"Cannot reach the issuer. (at {url}, {origin}: ")
    told = setting in {"FEDERATION_URL", "--url"}
    assert ("set FEDERATION_URL" in message) is not told
    assert (f"is {setting} right?" in message) is told


def test_the_flag_wins_over_every_variable() -> None:
    from federation.cli.common import issuer_url

    everything = {
        "FEDERATION_URL": "http://127.0.0.1:1",
        "FEDERATION_HOST": "127.0.0.2",
        "FEDERATION_PORT": "2",
        "FEDERATION_ISSUER": "http://localhost:3",
    }
    chosen = issuer_url("http://127.0.0.1:9", "--url", everything)
    assert (chosen, chosen.origin) == ("http://127.0.0.1:9", "--url")


@pytest.mark.parametrize(
    ("environ", "url", "origin"),
    [
        ({}, "http://127.0.0.1:8080", "the default"),
        ({"FEDERATION_PORT": "18080"}, "http://127.0.0.1:18080", "FEDERATION_PORT"),
        ({"FEDERATION_HOST": "localhost"}, "http://localhost:8080", "FEDERATION_HOST"),
        (
            {"FEDERATION_HOST": "0.0.0.0", "FEDERATION_PORT": "9"},  # noqa: S104
            "http://127.0.0.1:9",
            "FEDERATION_HOST and FEDERATION_PORT",
        ),
        ({"FEDERATION_HOST": "::", "FEDERATION_PORT": "9"}, "http://[::1]:9", None),
        ({"FEDERATION_HOST": "::1"}, "http://[::1]:8080", None),
        # what `serve` listens on wins over the issuer it publishes
        (
            {"FEDERATION_PORT": "9", "FEDERATION_ISSUER": "http://localhost:7"},
            "http://127.0.0.1:9",
            "FEDERATION_PORT",
        ),
        ({"FEDERATION_ISSUER": "http://localhost:7"}, "http://localhost:7", "FEDERATION_ISSUER"),
        # an issuer elsewhere is not where a local server listens
        ({"FEDERATION_ISSUER": "https://issuer.example.com"}, "http://127.0.0.1:8080", None),
        (
            {"FEDERATION_URL": "https://issuer.example.com", "FEDERATION_PORT": "9"},
            "https://issuer.example.com",
            "FEDERATION_URL",
        ),
    ],
)
def test_which_url_the_cli_talks_to(environ: dict[str, str], url: str, origin: str | None) -> None:
    from federation.cli.common import issuer_url

    chosen = issuer_url(environ.get("FEDERATION_URL"), "FEDERATION_URL", environ)
    assert chosen == url
    if origin is not None:
        assert chosen.origin == origin


def test_a_bad_port_is_a_configuration_error_naming_the_variable(tmp_path: Path) -> None:
    env = {"FEDERATION_PORT": "80a", "WARP_API_KEY": "wk-" + "k" * 43}

    message = assert_error_line(run_main(env, "whoami", cwd=tmp_path), 78)

    assert message.startswith("Invalid issuer URL. (FEDERATION_PORT '80a' is not a port number")
    # A command that talks to no issuer does not care.
    token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln"
    decoded = run_main(env, "decode", token, cwd=tmp_path)
    assert decoded.returncode == 0, decoded.stderr
    assert json.loads(decoded.stdout)["claims"] == {"sub": "x"}


# ---- B: a bare group prints its help ---------------------------------------------------


@pytest.mark.parametrize(
    "args", [(), ("runs",), ("policy",), ("policy", "test"), ("keys",)], ids=" ".join
)
def test_a_bare_group_prints_its_help_on_stdout_and_exits_0(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = run_main({}, *args, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    usage = " ".join(("federation", *args))
    assert result.stdout.startswith(f"Usage: {usage} [OPTIONS] COMMAND [ARGS]...\n")
    assert "--help`" not in result.stdout
    # A group given a command it does not have is still a usage error, with the hint.
    wrong = assert_error_line(run_main({}, *args, "nope", cwd=tmp_path), 2)
    assert wrong.endswith(f"; see `{usage} --help`")


# ---- C: messages that name the CLI's own variables and flags ---------------------------


def test_a_missing_workload_token_names_warp_workload_token(
    server: LiveServer, admin: LiveWorld
) -> None:
    agent = admin.platform_agent()
    env = {**server.env, "WARP_API_KEY": agent.key, "OZ_RUN_ID": agent.run_id}

    result = run_main(env, "issue-token", "--audience", AWS, cwd=server.home)

    message = assert_error_line(result, 77, agent.key)
    assert "WARP_WORKLOAD_TOKEN" in message
    assert "X-Warp-Ambient-Workload-Token" not in message


def test_a_bad_url_flag_is_named_as_the_flag(tmp_path: Path) -> None:
    env = {"FEDERATION_URL": "http://127.0.0.1:1", "WARP_API_KEY": "wk-" + "k" * 43}

    result = run_main(env, "--url", "ftp://x", "whoami", cwd=tmp_path)

    message = assert_error_line(result, 78)
    assert message == "Invalid issuer URL. (--url 'ftp://x' is not an http(s) URL)"


def test_a_bad_federation_url_is_named_as_the_variable(tmp_path: Path) -> None:
    env = {"FEDERATION_URL": "ftp://x", "WARP_API_KEY": "wk-" + "k" * 43}

    message = assert_error_line(run_main(env, "whoami", cwd=tmp_path), 78)

    assert message == "Invalid issuer URL. (FEDERATION_URL 'ftp://x' is not an http(s) URL)"


def test_an_unknown_run_state_names_the_state_argument(tmp_path: Path) -> None:
    result = run_main({}, "runs", "set-state", "run-1", "DONE", cwd=tmp_path)

    message = assert_error_line(result, 2)
    assert message.startswith("Invalid value for 'STATE': 'DONE' is not one of 'QUEUED'")
    assert "{QUEUED|" not in message


def test_set_state_help_lists_the_states(tmp_path: Path) -> None:
    from federation.domain.run_states import RunState

    result = run_main({}, "runs", "set-state", "--help", cwd=tmp_path)

    assert "Usage: federation runs set-state [OPTIONS] RUN_ID STATE" in result.stdout
    assert all(state.value in result.stdout for state in RunState)


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (
            (
                "issue-token",
                "--run-id",
                "r",
                "--audience",
                AWS,
                "--subject-template",
                "teams,environment",
            ),
            "--subject-template teams environment",
        ),
        (
            (
                "issue-token",
                "--run-id",
                "r",
                "--audience",
                AWS,
                "--subject-template=teams,principal",
            ),
            "--subject-template teams principal",
        ),
        (
            ("azure-assertion", "--run-id", "r", "--subject-template", "teams,", "environment"),
            "--subject-template teams environment",
        ),
        (
            (
                *("policy", "suggest", "aws", "--provider-arn", "arn:aws:iam::1:oidc-provider/x"),
                *("--subject-template", "teams,environment", "--run-attributes", "teams=t"),
            ),
            "--subject-template teams environment",
        ),
        # a value that is no component name is not repeated: it may be a misplaced secret
        (
            (
                "issue-token",
                "--run-id",
                "r",
                "--audience",
                AWS,
                "--subject-template",
                "wk-Secret,x",
            ),
            "--subject-template teams environment",
        ),
    ],
    ids=["issue-token", "equals", "azure-assertion", "policy-suggest", "not-a-name"],
)
def test_commas_in_a_subject_template_get_a_space_separated_hint(
    tmp_path: Path, args: tuple[str, ...], hint: str
) -> None:
    # NOTE: nothing listens at the URL: a usage error comes before any request.
    env = {
        "FEDERATION_URL": f"http://127.0.0.1:{free_port()}",
        "WARP_API_KEY": "wk-" + "k" * 43,
        "WARP_WORKLOAD_TOKEN": "wlt-" + "w" * 43,
    }

    message = assert_error_line(run_main(env, *args, cwd=tmp_path), 2, "Secret")

    assert "separated by spaces" in message
    assert hint in message


def test_a_wrong_audience_shows_the_expected_and_the_actual(
    server: LiveServer, admin: LiveWorld
) -> None:
    agent = admin.platform_agent()
    token = issue_over_http(server, agent)["token"]

    result = run_main(server.env, "verify", token, "--audience", "wrong", cwd=server.home)

    message = assert_error_line(result, 1, agent.key, agent.workload_token)
    assert message == (
        "The token did not verify. (the token's audience is 'sts.amazonaws.com', not "
        "'wrong' as expected)"
    )


# ---- D: titles that say what happened ---------------------------------------------------


def test_verify_against_an_unreachable_issuer_says_so(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln"

    result = run_main({}, "verify", token, "--audience", "a", "--issuer", url, cwd=tmp_path)

    message = assert_error_line(result, 75)
    assert message.startswith(f"Cannot reach the issuer. (at {url}, from --issuer: ")


def test_an_issue_token_to_a_closed_port_keeps_exit_75_and_its_new_title(
    server: LiveServer, admin: LiveWorld
) -> None:
    agent: Agent = admin.platform_agent()
    env = {**without_url(server), **agent_env(agent), "FEDERATION_PORT": str(free_port())}

    result = run_main(
        env, "issue-token", "--run-id", agent.run_id, "--audience", AWS, cwd=server.home
    )

    message = assert_error_line(result, 75, agent.key, agent.workload_token)
    assert message.startswith("Cannot reach the issuer. (at http://127.0.0.1:")
    assert "temporarily unavailable" not in message


# ---- E: grouped help, every option documented -------------------------------------------


def commands(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every visible command under ``command``, itself first."""
    if command.hidden:
        return
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from commands(sub, (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def test_every_command_and_option_has_help() -> None:
    undocumented = []
    for path in commands(cli):
        command = command_at(path)
        name = " ".join(("federation", *path))
        if not (command.help or command.short_help or "").strip():
            undocumented.append(name)
        for param in command.params:
            documented = bool((param.help or "").strip())
            if isinstance(param, click.Option) and not param.hidden and not documented:
                undocumented.append(f"{name} {param.opts[0]}")
    assert undocumented == []


def test_every_help_shows_environment_variables_one_way(tmp_path: Path) -> None:
    for path in commands(cli):
        result = run_main({}, *path, "--help", cwd=tmp_path)
        assert result.returncode == 0, (path, result.stderr)
        text = " ".join(result.stdout.split())  # as if no line were wrapped
        assert "(env " not in text, path
        for param in command_at(path).params:
            if isinstance(param, click.Option) and param.envvar and not param.hidden:
                names = [param.envvar] if isinstance(param.envvar, str) else param.envvar
                assert f"[env var: {', '.join(names)}" in text, (path, param.opts)


def test_the_commands_are_listed_by_task(tmp_path: Path) -> None:
    from federation.cli.sections import SECTIONS

    result = run_main({}, "--help", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    titles = [line[:-1] for line in result.stdout.splitlines() if line and line[0] != " "]
    assert titles[-len(SECTIONS) :] == [title for title, _ in SECTIONS]
    assert "Commands:" not in titles
    assert "Other commands:" not in titles
    sectioned = {name for _, names in SECTIONS for name in names}
    visible = {path[0] for path in commands(cli) if len(path) == 1}
    assert visible <= sectioned, visible - sectioned
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert sorted(name for name in listed if name in visible) == sorted(visible)


# ---- F: exit codes that survive a closed pipe -------------------------------------------

ISSUER = "https://issuer.example.com"
ENTRA = "api://AzureADTokenExchange"
CLAIMS = {
    "iss": ISSUER,
    "sub": "teams:t1/environment:prod",
    "aud": [ENTRA],
    "iat": 1795860000,
    "nbf": 1795860000,
    "exp": 1795863600,
}


def to_a_closed_pipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real entry point with stdout a pipe whose reader has already gone (as
    `| head -1` leaves it once head has its line); stderr captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEDERATION_", "WARP_", "OZ_"))}
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            federation_command(*args),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)


def test_policy_test_keeps_its_decision_when_the_reader_goes_away(tmp_path: Path) -> None:
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps(CLAIMS))
    for subject, decision in (("teams:t1/environment:prod", 0), ("other", 1)):  # allow, deny
        credential = tmp_path / "credential.json"
        credential.write_text(
            json.dumps({"name": "c", "issuer": ISSUER, "subject": subject, "audiences": [ENTRA]})
        )
        args = ("--credential", str(credential), "--claims", str(claims))

        result = to_a_closed_pipe(
            "policy", "test", "azure", *args, "--at", "2026-11-28T10:00:00Z", cwd=tmp_path
        )

        assert result.returncode == decision, result.stderr
        assert result.stderr == ""


@pytest.mark.parametrize(
    "args",
    [("--help",), ("decode", "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln")],
    ids=["help", "decode"],
)
def test_a_closed_stdout_prints_no_traceback_and_exits_0(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = to_a_closed_pipe(*args, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    assert "BrokenPipe" not in result.stderr


def test_an_error_still_reaches_stderr_when_stdout_is_closed(tmp_path: Path) -> None:
    result = to_a_closed_pipe("runs", "set-state", "run-1", "DONE", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith("federation: Invalid value for 'STATE'")
