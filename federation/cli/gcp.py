"""GCP commands: ``issue-gcp-token`` (Oz's hidden executable for google-auth),
``gcp-credential-config``, ``exchange gcp`` and ``stand-in gcp``."""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
import tempfile
import time
from pathlib import Path

import click

from federation.cli.common import Cli, api_key_option
from federation.cli.output import emit_json
from federation.errors import FederationError, InvalidRequest

# The defaults of federation.exchange.gcp, repeated: importing it loads google-auth and
# requests, a fifth of a second on every start of the CLI.
STS_URL = "https://sts.googleapis.com/v1/token"
IAM_URL = "https://iamcredentials.googleapis.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN


@click.command("issue-gcp-token", hidden=True)
@click.option("--run-id", envvar="OZ_RUN_ID", help="The run to issue for.")
@click.option(
    "--duration",
    default="1h",
    show_default=True,
    help="Requested token lifetime, as the Oz CLI takes it (15m, 1h 30m, 1day).",
)
@click.option(
    "--audience",
    envvar="GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE",
    help="The workload identity provider.",
)
@click.option(
    "--token-type",
    envvar="GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE",
    default=ID_TOKEN_TYPE,
    help="id_token or jwt token type URN.",
)
@click.option(
    "--output-file",
    envvar="GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the response here.",
)
@api_key_option
@click.pass_context
def issue_gcp_token(
    ctx: click.Context,
    run_id: str | None,
    duration: str,
    audience: str | None,
    token_type: str,
    output_file: Path | None,
    api_key: str | None,
) -> None:
    """An executable-sourced credential for google-auth (AIP-4117 output)."""
    from federation.exchange import gcp
    from federation.exchange.source import ApiTokenSource

    try:
        if not audience:
            raise InvalidRequest("no audience: set GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE or --audience")
        if token_type not in gcp.TOKEN_TYPES:
            raise InvalidRequest(
                f"unsupported token type {token_type!r}; use {' or '.join(gcp.TOKEN_TYPES)}"
            )
        source = ApiTokenSource.from_environment(run_id=run_id, api_key=api_key, url=ctx.obj.url)
        with source.client:
            minted = source.mint(audience, duration=duration, subject_template=["principal"])
        response = gcp.executable_response(minted, token_type)
    except Exception as error:
        # NOTE: google-auth reads stdout and stderr together: nothing but the AIP-4117
        # document may be printed, success or not.
        message = (
            error.message
            if isinstance(error, FederationError)
            else f"unexpected error ({type(error).__name__})"
        )
        click.echo(json.dumps(gcp.executable_error(message)), err=True)
        ctx.exit(1)
    document = json.dumps(response)
    if output_file is not None:
        _cache(output_file, document)
    click.echo(document)


def _cache(path: Path, document: str) -> None:
    """Write the response where google-auth looks first. As the Oz CLI does, a failure
    is reported and the command still succeeds: the token is good without its cache."""
    try:
        _write_private(path, document.encode())
    except InvalidRequest as error:
        # NOTE: google-auth for Python runs the executable with stderr sent into
        # stdout and parses what it reads as JSON: there a line of warning would turn
        # a working credential into a failing one, so the warning is left out.
        if not _stderr_is_stdout():
            click.echo(f"federation: warning: {error.detail or error.message}", err=True)


def _stderr_is_stdout() -> bool:
    """Whether stderr is the very pipe or file that stdout is (a terminal is not)."""
    try:
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):  # no file descriptor behind them
        return False
    same = (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino)
    return same and not stat.S_ISCHR(out.st_mode)


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with a 0600 file (the token is a credential), in one rename; the
    directory is google-auth's choice and is left as it is."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InvalidRequest(f"cannot write the output file {path}: {exc.strerror}") from None


def _federation_command() -> list[str]:
    """How to run this installation's ``federation`` from anywhere: its console script
    when that is what runs now, else this interpreter with ``-m federation``."""
    script = Path(os.path.abspath(sys.argv[0]))
    if script.name == "federation" and script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    # NOTE: not resolved: a virtualenv's python is a symlink whose target lacks the venv.
    return [os.path.abspath(sys.executable), "-m", "federation"]


@click.command("gcp-credential-config")
@click.option("--audience", required=True, help="//iam.googleapis.com/projects/<number>/...")
@click.option("--service-account", help="Impersonate this service account (email).")
@click.option("--duration", help="Lifetime of each token the command mints (e.g. 15m).")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the credential configuration.",
)
@click.option("--token-url", default=STS_URL, show_default=True, help="GCP STS token URL.")
@click.option(
    "--impersonation-url-base",
    default=IAM_URL,
    show_default=True,
    help="IAM Credentials base URL.",
)
@click.option(
    "--lifetime-seconds",
    type=click.IntRange(600, 43200),
    help="Impersonated token lifetime (GCP's default 3600).",
)
@click.option("--run-id", envvar="OZ_RUN_ID", required=True, help="The run.")
@click.pass_obj
def gcp_credential_config(
    cli: Cli,
    audience: str,
    service_account: str | None,
    duration: str | None,
    out: Path,
    token_url: str,
    impersonation_url_base: str,
    lifetime_seconds: int | None,
    run_id: str,
) -> None:
    """Write an external_account configuration for google.auth.default() and gcloud.

    Its command runs this installation's `federation issue-gcp-token` for the run; the
    run's WARP_API_KEY and WARP_WORKLOAD_TOKEN stay in the environment, never in the
    file.
    """
    from federation._internal.files import replace_public
    from federation.domain.durations import parse_human_duration
    from federation.exchange import gcp

    command = [*_federation_command(), "--url", cli.url, "issue-gcp-token", "--run-id", run_id]
    if duration is not None:
        command += ["--duration", f"{parse_human_duration(duration)}s"]
    config = gcp.credential_config(
        audience=audience,
        command=command,
        service_account=service_account,
        token_url=token_url,
        impersonation_url_base=impersonation_url_base,
        lifetime_seconds=lifetime_seconds,
    )
    path = Path(os.path.abspath(out))
    # NOTE: no secret inside (the key and workload token stay in the environment), and a
    # private file would tighten its directory, often the workspace, to 0700.
    replace_public(path, (json.dumps(config, indent=2) + "\n").encode())
    click.echo(f"export GOOGLE_APPLICATION_CREDENTIALS={shlex.quote(str(path))}")
    click.echo("export GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1")
    click.echo(
        f"federation: wrote {path}; for gcloud also set "
        f"CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE={shlex.quote(str(path))}",
        err=True,
    )


@click.command("gcp")
@click.option("--audience", required=True, help="//iam.googleapis.com/projects/<number>/...")
@click.option("--service-account", help="Impersonate this service account (email).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    default=[CLOUD_PLATFORM],
    show_default=True,
    help="OAuth scope (repeat for several).",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["env", "json"]),
    default="env",
    show_default=True,
    help="env: CLOUDSDK_AUTH_ACCESS_TOKEN=...; json: token and expiry.",
)
@click.option("--duration", help="Lifetime of the identity token traded (e.g. 15m).")
@click.option(
    "--lifetime-seconds",
    type=click.IntRange(600, 43200),
    default=3600,
    show_default=True,
    help="Impersonated token lifetime.",
)
@click.option(
    "--subject-template",
    multiple=True,
    help="Components of sub (default: the issuer's, principal).",
)
@click.option(
    "--token-url",
    envvar="FEDERATION_GCP_STS_URL",
    default=STS_URL,
    show_default=True,
    help="GCP STS token URL.",
)
@click.option(
    "--impersonation-url-base",
    envvar="FEDERATION_GCP_IAM_URL",
    default=IAM_URL,
    show_default=True,
    help="IAM Credentials base URL.",
)
@click.option("--run-id", envvar="OZ_RUN_ID", help="The run.")
@api_key_option
@click.pass_obj
def exchange_gcp(
    cli: Cli,
    audience: str,
    service_account: str | None,
    scopes: tuple[str, ...],
    output: str,
    duration: str | None,
    lifetime_seconds: int,
    subject_template: tuple[str, ...],
    token_url: str,
    impersonation_url_base: str,
    run_id: str | None,
    api_key: str | None,
) -> None:
    """Trade a token for a GCP access token (via STS, and IAM with --service-account)."""
    from federation.exchange import gcp
    from federation.exchange.source import ApiTokenSource

    source = ApiTokenSource.from_environment(run_id=run_id, api_key=api_key, url=cli.url)
    with source.client:
        token = gcp.access_token(
            source,
            audience=audience,
            service_account=service_account,
            scopes=scopes,
            token_url=token_url,
            impersonation_url_base=impersonation_url_base,
            lifetime_seconds=lifetime_seconds,
            duration=duration,
            subject_template=subject_template or None,
        )
    if output == "json":
        emit_json(
            {
                "access_token": token.token,
                "expires_at": token.expires_at.isoformat().replace("+00:00", "Z"),
                "token_type": token.token_type,
            }
        )
    else:
        click.echo(f"CLOUDSDK_AUTH_ACCESS_TOKEN={token.token}")


def _binding(text: str) -> tuple[str, str]:
    account, sep, principal = text.partition("=")
    if not sep or not account or not principal:
        raise click.BadParameter(f"expected SA=PRINCIPAL, got {text!r}")
    return account, principal


def _mapping(text: str) -> tuple[str, str]:
    key, sep, expression = text.partition("=")
    if not sep or not key or not expression:
        raise click.BadParameter(f"expected KEY=CEL, got {text!r}")
    return key.strip(), expression


@click.command("gcp")
@click.option("--issuer", required=True, help="The provider's issuer URI (the iss to trust).")
@click.option("--provider", required=True, help="//iam.googleapis.com/projects/N/.../providers/Q")
@click.option("--allowed-audience", "audiences", multiple=True, help="Repeat for several.")
@click.option(
    "--service-account",
    "bindings",
    multiple=True,
    help="SA=PRINCIPAL: who may impersonate SA (principal://... or principalSet://...).",
)
@click.option("--require-team", help="Condition: '<team>' in assertion.teams.")
@click.option("--require-subject-prefix", help="Condition: assertion.sub.startsWith(...).")
@click.option(
    "--attribute-condition",
    help="The provider's attributeCondition in CEL (instead of the --require-* shorthands).",
)
@click.option(
    "--attribute-mapping",
    "mappings",
    multiple=True,
    metavar="KEY=CEL",
    help="The provider's attributeMapping, one key a time (default: google.subject from "
    "assertion.sub, google.groups from assertion.teams, attribute.environment).",
)
@click.option(
    "--jwk-json-path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An uploaded JWKS (federation publish --gcp-jwks) instead of discovery.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0: any free port.")
def stand_in_gcp(
    issuer: str,
    provider: str,
    audiences: tuple[str, ...],
    bindings: tuple[str, ...],
    require_team: str | None,
    require_subject_prefix: str | None,
    attribute_condition: str | None,
    mappings: tuple[str, ...],
    jwk_json_path: Path | None,
    port: int,
) -> None:
    """Serve a GCP STS + IAM Credentials stand-in on 127.0.0.1 until interrupted.

    Prints its base URL on stdout: use BASE/v1/token as the token URL and BASE as the
    impersonation URL base.
    """
    from federation.stand_ins.gcp_sts import DEFAULT_MAPPING, Condition, Provider, gcp_sts_app
    from federation.stand_ins.serving import serve

    condition: Condition | str | None = attribute_condition
    if require_team or require_subject_prefix:
        if attribute_condition:
            raise click.BadParameter("give --attribute-condition or --require-*, not both")
        condition = Condition(subject_prefix=require_subject_prefix, team=require_team)
    mapping = dict(map(_mapping, mappings)) if mappings else dict(DEFAULT_MAPPING)
    try:
        configured = Provider(
            name=provider,
            issuer_uri=issuer,
            allowed_audiences=audiences,
            condition=condition,
            jwks_json=jwk_json_path.read_text(encoding="utf-8") if jwk_json_path else None,
            attribute_mapping=mapping,
        )
    except (ValueError, OSError) as exc:
        raise click.BadParameter(str(exc)) from None
    service_accounts: dict[str, list[str]] = {}
    for account, principal in map(_binding, bindings):
        service_accounts.setdefault(account, []).append(principal)
    app = gcp_sts_app([configured], service_accounts)
    with serve(app, port=port) as url:
        click.echo(url)
        click.echo(
            f"federation: GCP stand-in for {provider}: token URL {url}/v1/token, "
            f"impersonation URL base {url}; condition "
            f"{configured.attribute_condition or 'none'}; Ctrl-C stops it",
            err=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


COMMANDS: tuple[click.Command, ...] = (issue_gcp_token, gcp_credential_config)
