"""AWS from inside a run: ``aws-web-identity`` (the ambient form Oz uses),
``aws-credential-process``, ``exchange aws``; and ``stand-in aws`` for tests and CI.

The key comes from ``WARP_API_KEY``, the run from ``OZ_RUN_ID``, the workload token from
``WARP_WORKLOAD_TOKEN`` and the issuer from ``FEDERATION_URL``; STS's endpoint from
``--sts-endpoint`` or ``AWS_ENDPOINT_URL_STS`` and its region from ``AWS_REGION``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from federation.cli.common import Cli, GreedyCommand, api_key_option
from federation.clock import SystemClock
from federation.errors import InvalidRequest
from federation.exchange import aws
from federation.exchange import web_identity as token_file_module
from federation.exchange.source import ApiTokenSource

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("env", "json", "credential-process", "ini")


class AwsCommand(GreedyCommand):
    greedy = ("--subject-template", "--aws-session-tag")


def _options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(function: F) -> F:
        for decorate in reversed(decorators):
            function = decorate(function)
        return function

    return apply


_run_options = _options(
    click.option("--run-id", envvar="OZ_RUN_ID", help="The run."),
    api_key_option,
    click.option(
        "--subject-template",
        multiple=True,
        help="Components joined into sub.  [default: scoped_principal]",
    ),
)
_session_options = _options(
    click.option("--role-arn", required=True, help="The IAM role to assume."),
    click.option("--session-name", help="RoleSessionName.  [default: Oz_Run_<run-id>]"),
    click.option(
        "--duration-seconds",
        type=int,
        default=aws.DEFAULT_DURATION,
        show_default=True,
        help="Session lifetime, 900-43200 and at most the role's MaxSessionDuration.",
    ),
    click.option(
        "--aws-session-tag",
        "tags",
        multiple=True,
        help="A run attribute to carry as a session tag (needs sts:TagSession).",
    ),
    click.option("--policy", help="An inline session policy (JSON) that narrows the role."),
    click.option(
        "--policy-arn", "policy_arns", multiple=True, help="A managed session policy (up to 10)."
    ),
    click.option(
        "--sts-endpoint",
        envvar="AWS_ENDPOINT_URL_STS",
        help="STS's URL.  [default: AWS's, by region]",
    ),
    click.option("--region", envvar=["AWS_REGION", "AWS_DEFAULT_REGION"], help="AWS region."),
)


def _credentials(
    cli: Cli,
    *,
    run_id: str | None,
    api_key: str | None,
    subject_template: tuple[str, ...],
    role_arn: str,
    session_name: str | None,
    duration_seconds: int,
    tags: tuple[str, ...],
    policy: str | None,
    policy_arns: tuple[str, ...],
    sts_endpoint: str | None,
    region: str | None,
) -> aws.AwsCredentials:
    source = ApiTokenSource.from_environment(run_id=run_id, api_key=api_key, url=cli.url)
    with source.client:
        return aws.credentials(
            source,
            role_arn=role_arn,
            session_name=session_name,
            duration_seconds=duration_seconds,
            policy=policy,
            policy_arns=policy_arns,
            aws_session_tags=tags or None,
            subject_template=subject_template or aws.SUBJECT_TEMPLATE,
            client=aws.sts_client(region=region, endpoint_url=sts_endpoint),
        )


@click.command("aws-credential-process", cls=AwsCommand)
@_run_options
@_session_options
@click.pass_obj
def credential_process(cli: Cli, /, **options: Any) -> None:
    """Print AWS credentials as credential_process JSON, for ~/.aws/config:

    \b
      [profile run]
      credential_process = federation aws-credential-process --role-arn arn:aws:iam::...
    """
    click.echo(json.dumps(_credentials(cli, **options).as_credential_process()))


@click.command("aws", cls=AwsCommand)
@_run_options
@_session_options
@click.option(
    "--format",
    "output",
    type=click.Choice(FORMATS),
    default="env",
    show_default=True,
    help="env: export lines for eval; ini: a credentials-file profile.",
)
@click.option("--profile", default="default", show_default=True, help="The ini profile's name.")
@click.pass_obj
def exchange_aws(cli: Cli, /, output: str, profile: str, **options: Any) -> None:
    """Trade a fresh token for AWS role credentials (AssumeRoleWithWebIdentity).

    \b
      eval "$(federation exchange aws --role-arn arn:aws:iam::123456789012:role/ci)"
    """
    found = _credentials(cli, **options)
    if output == "env":
        for name, value in found.as_env().items():
            click.echo(f"export {name}={shlex.quote(value)}")
    elif output == "json":
        document = found.as_credential_process()
        keys = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
        user = {"Arn": found.assumed_role_arn} if found.assumed_role_arn else {}
        click.echo(
            json.dumps(
                {"Credentials": {key: document[key] for key in keys}, "AssumedRoleUser": user},
                indent=2,
            )
        )
    elif output == "ini":
        click.echo(found.as_ini(profile), nl=False)
    else:
        click.echo(json.dumps(found.as_credential_process()))


@click.command("aws-web-identity", cls=AwsCommand)
@_run_options
@click.option("--role-arn", help="The IAM role the SDKs assume (exported as AWS_ROLE_ARN).")
@click.option(
    "--token-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the token (AWS_WEB_IDENTITY_TOKEN_FILE); replaced atomically, 0600.",
)
@click.option("--session-name", help="AWS_ROLE_SESSION_NAME.  [default: Oz_Run_<run-id>]")
@click.option(
    "--duration",
    default=token_file_module.TOKEN_FILE_DURATION,
    show_default=True,
    help="The token's lifetime (the issuer caps it).",
)
@click.option("--sts-endpoint", help="Also export AWS_ENDPOINT_URL_STS with this URL.")
@click.option(
    "--keep-fresh",
    is_flag=True,
    help="Rewrite the file in the background at half of each token's lifetime, until the run ends.",
)
@click.option("--refresher", is_flag=True, hidden=True)
@click.pass_obj
def web_identity(
    cli: Cli,
    run_id: str | None,
    api_key: str | None,
    subject_template: tuple[str, ...],
    role_arn: str | None,
    token_file: Path,
    session_name: str | None,
    duration: str,
    sts_endpoint: str | None,
    keep_fresh: bool,
    refresher: bool,
) -> None:
    """Write a token for AWS to a file and print the variables the AWS SDKs read, so
    their default credential chain assumes the role by itself:

    \b
      eval "$(federation aws-web-identity --keep-fresh \\
          --role-arn arn:aws:iam::123456789012:role/ci --token-file ~/.aws/oz-token)"
    """
    source = ApiTokenSource.from_environment(run_id=run_id, api_key=api_key, url=cli.url)
    path = token_file.expanduser().absolute()
    template = subject_template or aws.SUBJECT_TEMPLATE
    token_file_ = token_file_module.WebIdentityTokenFile(path, source, duration, template)
    if refresher:
        with source.client:
            token_file_module.keep_fresh(
                token_file_, token_file_.current(), clock=SystemClock(), sleep=time.sleep
            )
        return
    if not role_arn:
        raise InvalidRequest("no role: pass --role-arn")
    aws.validate_role_arn(role_arn)
    name = aws.validate_session_name(session_name or aws.default_session_name(source.run_id))
    with source.client:
        token_file_.refresh()
    exports = {
        "AWS_ROLE_ARN": role_arn,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(path),
        "AWS_ROLE_SESSION_NAME": name,
    }
    if sts_endpoint:
        exports["AWS_ENDPOINT_URL_STS"] = sts_endpoint
    for variable, value in exports.items():
        click.echo(f"export {variable}={shlex.quote(value)}")
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        click.echo(
            "federation: note: AWS_ACCESS_KEY_ID is set, and the SDKs use it before the web "
            "identity token; unset it",
            err=True,
        )
    if keep_fresh:
        pid = start_refresher(cli.url, source.run_id, path, duration, template, api_key)
        click.echo(f"federation: refreshing {path} in the background (pid {pid})", err=True)


def start_refresher(
    url: str,
    run_id: str,
    path: Path,
    duration: str,
    subject_template: Sequence[str],
    api_key: str | None,
) -> int:
    """A detached ``aws-web-identity --refresher``; the key goes in its environment, never
    in its arguments (others can read those)."""
    argv = [sys.executable, "-m", "federation", "--url", url, "aws-web-identity", "--refresher"]
    argv += ["--token-file", str(path), "--run-id", run_id, "--duration", duration]
    for component in subject_template:
        argv += ["--subject-template", component]
    env = dict(os.environ)
    if api_key:
        env["WARP_API_KEY"] = api_key
    # NOTE: no inherited stdout: `eval "$(...)"` waits for every writer to close it.
    process = subprocess.Popen(  # noqa: S603 - our own command
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    return process.pid


@click.command("aws")
@click.option(
    "--issuer",
    "issuers",
    multiple=True,
    required=True,
    help="A registered OIDC provider's URL, compared with iss byte for byte.",
)
@click.option(
    "--client-id",
    "client_ids",
    multiple=True,
    default=(aws.AUDIENCE,),
    show_default=True,
    help="An audience the providers accept.",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="ROLE_ARN[=SUB_PATTERN]",
    help="A role that trusts the providers, for a sub matching the StringLike pattern.",
)
@click.option(
    "--trust-policy",
    "trust_policies",
    multiple=True,
    metavar="ROLE_ARN=FILE",
    help="A role whose trust policy is the JSON document in FILE, evaluated as "
    "`policy test aws` does.",
)
@click.option("--tag-session", is_flag=True, help="The roles also allow sts:TagSession.")
@click.option(
    "--max-session-duration",
    type=click.IntRange(900, 43200),
    default=3600,
    show_default=True,
    help="The roles' MaxSessionDuration, seconds: the longest session they grant.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="[default: any free one]")
def stand_in_aws(
    issuers: tuple[str, ...],
    client_ids: tuple[str, ...],
    roles: tuple[str, ...],
    trust_policies: tuple[str, ...],
    tag_session: bool,
    max_session_duration: int,
    port: int,
) -> None:
    """Serve a local AWS STS stand-in (AssumeRoleWithWebIdentity) on 127.0.0.1 until
    interrupted; point AWS_ENDPOINT_URL_STS at it. It checks tokens as STS does."""
    import httpx

    from federation.stand_ins.aws_sts import OidcProvider, Role, aws_sts_app
    from federation.stand_ins.issuers import IssuerKeys
    from federation.stand_ins.serving import serve

    providers = [OidcProvider(issuer, tuple(client_ids)) for issuer in issuers]
    found = []
    for text in roles:
        arn, _, pattern = text.partition("=")
        try:
            found.append(Role(arn, pattern or None, None, tag_session, max_session_duration))
        except ValueError:
            raise InvalidRequest(
                "--role takes ROLE_ARN[=SUB_PATTERN] with an IAM role ARN"
            ) from None
    for text in trust_policies:
        arn, _, path = text.partition("=")
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            found.append(
                Role(arn, max_session_duration=max_session_duration, trust_policy=document)
            )
        except (OSError, ValueError, TypeError) as exc:
            raise InvalidRequest(f"--trust-policy {text}: {exc}") from None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("aws-sts: %(message)s"))
    logger = logging.getLogger("federation.stand_in.aws_sts")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    signal.signal(signal.SIGTERM, _interrupted)
    with (
        httpx.Client(timeout=5.0) as http,
        serve(aws_sts_app(providers, found, keys=IssuerKeys(http)), port=port) as url,
    ):
        click.echo(f"export AWS_ENDPOINT_URL_STS={url}")
        sys.stdout.flush()
        threading.Event().wait()


def _interrupted(*_: object) -> NoReturn:
    raise KeyboardInterrupt


COMMANDS: tuple[click.Command, ...] = (web_identity, credential_process)
