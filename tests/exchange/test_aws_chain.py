"""boto3's own credential chain, unchanged, on what our commands give it: the web
identity token file (``aws-web-identity``) and ``credential_process``; moto serves the
rest of the AWS API. Our commands run as the entry point's ``main`` in process, except
where a process is the point: botocore runs ``credential_process`` as one, and
``--keep-fresh`` leaves a detached refresher behind (stopped with a deadline)."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import CredentialRetrievalError
from moto import mock_aws

from federation.stand_ins.aws_sts import AwsSts, OidcProvider
from tests.cli.helpers import (
    assert_error_line,
    invoke_main,
    pid_in,
    stop_process,
    verify_with_pyjwt,
)
from tests.exchange.aws_helpers import (
    ROLE_ARN,
    isolate_aws,
    new_agent,
    roles,
    run_env,
    stand_in,
)
from tests.support import Agent, LiveServer, federation_command, serve_issuer


@pytest.fixture(scope="module")
def server(templates: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("aws-issuer")) as server:
        yield server


@pytest.fixture(scope="module")
def sts(server: LiveServer) -> Iterator[tuple[str, AwsSts]]:
    with stand_in([OidcProvider(server.url)], roles()) as found:
        yield found


@pytest.fixture
def agent(server: LiveServer) -> Agent:
    return new_agent(server)


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sts: tuple[str, AwsSts]) -> None:
    isolate_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts[0])


def federation(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The entry point's ``main`` in this process, with ``env``, in ``cwd``."""
    return invoke_main(*args, env=env, cwd=cwd)


def federation_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point as a process, killed if it has not ended after 60 s."""
    return subprocess.run(
        federation_command(*args), env=env, capture_output=True, text=True, timeout=60, check=False
    )


def exports(stdout: str) -> dict[str, str]:
    """What `eval` would set: each line is `export NAME=<shell-quoted value>`."""
    found = {}
    for line in stdout.splitlines():
        words = shlex.split(line)
        assert words[0] == "export", line
        name, _, value = words[1].partition("=")
        found[name] = value
    return found


def web_identity_args(token_file: Path, *more: str) -> tuple[str, ...]:
    return ("aws-web-identity", "--role-arn", ROLE_ARN, "--token-file", str(token_file), *more)


def web_identity(
    server: LiveServer, agent: Agent, token_file: Path
) -> subprocess.CompletedProcess[str]:
    result = federation(run_env(server, agent), *web_identity_args(token_file))
    assert result.returncode == 0, result.stderr
    return result


def test_the_sdk_chain_assumes_the_role_from_the_token_file(
    server: LiveServer,
    sts: tuple[str, AwsSts],
    agent: Agent,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_file = tmp_path / "aws" / "web identity token"  # a space, quoted in the exports
    variables = exports(web_identity(server, agent, token_file).stdout)
    assert variables == {
        "AWS_ROLE_ARN": ROLE_ARN,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "AWS_ROLE_SESSION_NAME": f"Oz_Run_{agent.run_id}",
    }
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    claims = verify_with_pyjwt(token_file.read_text(), server.url, "sts.amazonaws.com")
    assert claims["sub"] == f"scoped_principal:platform/user:{agent.uid}"
    assert claims["exp"] - claims["iat"] == 3 * 3600  # Oz's 3h
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    credentials = boto3.Session().get_credentials()
    assert credentials is not None
    assert credentials.method == "assume-role-with-web-identity"
    frozen = credentials.get_frozen_credentials()  # the first STS call happens here
    granted = sts[1].sessions[-1]
    assert frozen.access_key == granted.access_key_id
    assert granted.role_arn == ROLE_ARN
    assert granted.session_name == f"Oz_Run_{agent.run_id}"
    assert granted.subject == claims["sub"]


def test_the_chains_credentials_work_against_moto(
    server: LiveServer,
    sts: tuple[str, AwsSts],
    agent: Agent,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_file = tmp_path / "token"
    for name, value in exports(web_identity(server, agent, token_file).stdout).items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        # moto puts fake keys in the environment, which would win over web identity;
        # it takes them out again when it ends.
        fake = {
            name: os.environ.pop(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        try:
            session = boto3.Session()
            s3 = session.client("s3")
            s3.create_bucket(Bucket="run-artifacts")
            s3.put_object(Bucket="run-artifacts", Key="report.txt", Body=b"ok")
            listed = s3.list_objects_v2(Bucket="run-artifacts")
            assert [item["Key"] for item in listed["Contents"]] == ["report.txt"]
            credentials = session.get_credentials()
            assert credentials is not None
            assert credentials.method == "assume-role-with-web-identity"
            frozen = credentials.get_frozen_credentials()
            assert frozen.access_key == sts[1].sessions[-1].access_key_id
        finally:
            os.environ.update(fake)


def test_credential_process_through_botocores_process_provider(
    server: LiveServer,
    sts: tuple[str, AwsSts],
    agent: Agent,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command = shlex.join(
        [
            *federation_command("aws-credential-process"),
            *("--role-arn", ROLE_ARN, "--session-name", "from-config"),
            *("--duration-seconds", "1800"),
        ]
    )
    config = tmp_path / "config"
    config.write_text(f"[profile run]\nregion = us-east-1\ncredential_process = {command}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name, value in run_env(server, agent).items():
        monkeypatch.setenv(name, value)

    credentials = boto3.Session(profile_name="run").get_credentials()
    assert credentials is not None
    assert credentials.method == "custom-process"
    frozen = credentials.get_frozen_credentials()
    granted = sts[1].sessions[-1]
    assert frozen.access_key == granted.access_key_id
    assert frozen.token
    assert granted.session_name == "from-config"
    assert granted.duration_seconds == 1800
    assert granted.subject == f"scoped_principal:platform/user:{agent.uid}"
    # With an expiration the SDK refreshes: it knows when these expire.
    assert credentials.refresh_needed() is False


def test_credential_process_failure_is_one_line_for_the_sdk(
    server: LiveServer, agent: Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_role = ROLE_ARN.replace("deploy", "nope")
    command = shlex.join([*federation_command("aws-credential-process"), "--role-arn", other_role])
    config = tmp_path / "config"
    config.write_text(f"[profile run]\ncredential_process = {command}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name, value in run_env(server, agent).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(CredentialRetrievalError) as caught:
        boto3.Session(profile_name="run").get_credentials()
    message = str(caught.value)
    assert "federation: You do not have permission" in message
    assert "AWS STS AccessDenied" in message
    assert "Traceback" not in message
    assert agent.key not in message
    assert agent.workload_token not in message


@pytest.mark.parametrize("output", ["env", "json", "credential-process", "ini"])
def test_exchange_aws_prints_each_format(
    server: LiveServer, sts: tuple[str, AwsSts], agent: Agent, output: str
) -> None:
    arguments = ["exchange", "aws", "--role-arn", ROLE_ARN, "--format", output]
    arguments += ["--profile", "ci", "--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"]
    result = federation(run_env(server, agent), *arguments)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    granted = sts[1].sessions[-1]
    assert granted.policy_arns == ("arn:aws:iam::aws:policy/ReadOnlyAccess",)
    key = granted.access_key_id
    if output == "env":
        assert exports(result.stdout)["AWS_ACCESS_KEY_ID"] == key
        assert set(exports(result.stdout)) == {
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_CREDENTIAL_EXPIRATION",
        }
    elif output == "json":
        document: dict[str, Any] = json.loads(result.stdout)
        assert document["Credentials"]["AccessKeyId"] == key
        assert document["AssumedRoleUser"]["Arn"] == granted_arn(granted.session_name)
    elif output == "credential-process":
        assert json.loads(result.stdout)["Version"] == 1
        assert json.loads(result.stdout)["AccessKeyId"] == key
    else:
        assert result.stdout.startswith("[ci]\n")
        assert f"aws_access_key_id = {key}\n" in result.stdout


def granted_arn(session_name: str) -> str:
    return f"arn:aws:sts::123456789012:assumed-role/deploy/{session_name}"


def test_exchange_errors_are_one_line_without_secrets(
    server: LiveServer, agent: Agent, tmp_path: Path
) -> None:
    env = run_env(server, agent)
    result = federation(env, "exchange", "aws", "--role-arn", ROLE_ARN, "--session-name", "a b")
    assert "2 to 64 characters" in assert_error_line(result, 2, agent.key, agent.workload_token)
    result = federation(env, "exchange", "aws", "--role-arn", ROLE_ARN, "--aws-session-tag", "team")
    message = assert_error_line(result, 77, agent.key, agent.workload_token)
    assert "sts:TagSession" in message
    del env["OZ_RUN_ID"]
    args = ("aws-web-identity", "--role-arn", ROLE_ARN, "--token-file", "t")
    result = federation(env, *args, cwd=tmp_path)
    assert "no run id: set OZ_RUN_ID" in assert_error_line(result, 2, agent.key)
    assert not (tmp_path / "t").exists()


def test_keep_fresh_leaves_a_detached_refresher(
    server: LiveServer, agent: Agent, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    more = ("--keep-fresh", "--duration", "10m")
    result = federation_process(run_env(server, agent), *web_identity_args(token_file, *more))
    # run() returned: the refresher holds neither stdout nor stderr (eval "$(...)" ends).
    pid = pid_in(result.stderr)
    assert pid is not None, result.stderr
    try:
        assert result.returncode == 0, result.stderr
        assert exports(result.stdout)["AWS_WEB_IDENTITY_TOKEN_FILE"] == str(token_file)
        line = result.stderr.strip().splitlines()[-1]
        assert line == f"federation: refreshing {token_file} in the background (pid {pid})"
        assert os.getsid(pid) == pid  # a session of its own: the shell's end spares it
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
        assert b"--refresher" in argv
        assert agent.key.encode() not in b" ".join(argv)  # the key is in its environment
    finally:
        stop_process(pid)  # SIGTERM, then SIGKILL, each with a deadline
