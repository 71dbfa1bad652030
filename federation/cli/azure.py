"""``federation exchange azure`` and ``federation azure-assertion``: Microsoft Entra.

Both mint from inside a run: API key from ``WARP_API_KEY`` (or ``--api-key``), run from
``OZ_RUN_ID`` (or ``--run-id``), workload token from ``WARP_WORKLOAD_TOKEN``, issuer
from ``FEDERATION_URL``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from federation._internal.files import replace_private
from federation.cli.common import Cli, GreedyCommand, api_key_option
from federation.cli.output import emit_json
from federation.domain.tokens import ENTRA_AUDIENCE
from federation.exchange.azure import (
    DEFAULT_AUTHORITY,
    DEFAULT_SCOPE,
    client_credentials_token,
    mint_assertion,
)
from federation.exchange.source import ApiTokenSource


class _AzureCommand(GreedyCommand):
    greedy = ("--subject-template",)


def _source(cli: Cli, run_id: str | None, api_key: str | None) -> ApiTokenSource:
    return ApiTokenSource.from_environment(run_id=run_id, api_key=api_key, url=cli.url)


_run_option = click.option(
    "--run-id", envvar="OZ_RUN_ID", show_envvar=True, help="The run to mint for."
)
_template_option = click.option(
    "--subject-template",
    multiple=True,
    help="Components joined into sub, e.g. --subject-template teams environment; the "
    "federated credential's subject must equal the result exactly.",
)
_audience_option = click.option(
    "--audience",
    default=ENTRA_AUDIENCE,
    show_default=True,
    help="The federated credential's audience (another value only in sovereign clouds).",
)


@click.command("azure", cls=_AzureCommand)
@click.option(
    "--tenant-id", envvar="AZURE_TENANT_ID", show_envvar=True, required=True, help="Directory id."
)
@click.option(
    "--client-id",
    envvar="AZURE_CLIENT_ID",
    show_envvar=True,
    required=True,
    help="Client id of the app registration or user-assigned managed identity.",
)
@click.option("--scope", default=DEFAULT_SCOPE, show_default=True, help="The .default scope.")
@_template_option
@click.option(
    "--authority",
    envvar="AZURE_AUTHORITY_HOST",
    show_envvar=True,
    default=DEFAULT_AUTHORITY,
    show_default=True,
    help="Entra's login endpoint (https; plain http only to a loopback stand-in).",
)
@_audience_option
@click.option(
    "--format",
    "output",
    type=click.Choice(("env", "json")),
    default="env",
    show_default=True,
    help="env: AZURE_ACCESS_TOKEN=... lines; json: access_token, expires_on, token_type.",
)
@_run_option
@api_key_option
@click.pass_obj
def exchange_azure(
    cli: Cli,
    tenant_id: str,
    client_id: str,
    scope: str,
    subject_template: tuple[str, ...],
    authority: str,
    audience: str,
    output: str,
    run_id: str | None,
    api_key: str | None,
) -> None:
    """Trade a fresh token for a Microsoft Entra access token (client credentials with
    our token as the client assertion)."""
    with _source(cli, run_id, api_key) as source:
        token = client_credentials_token(
            source,
            tenant_id=tenant_id,
            client_id=client_id,
            scope=scope,
            authority=authority,
            subject_template=subject_template,
            audience=audience,
        )
    expires_on = int(token.expires_at.timestamp())
    if output == "json":
        emit_json(
            {"access_token": token.token, "expires_on": expires_on, "token_type": token.token_type}
        )
        return
    click.echo(f"AZURE_ACCESS_TOKEN={shlex.quote(token.token)}")
    click.echo(f"AZURE_ACCESS_TOKEN_EXPIRES_ON={expires_on}")


@click.command("azure-assertion", cls=_AzureCommand)
@_template_option
@_audience_option
@click.option("--duration", help="Lifetime: 15m, 1h.  [default: the issuer's, 1h]")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the assertion to this file (mode 0600, replaced whole) instead of stdout, "
    "e.g. for AZURE_FEDERATED_TOKEN_FILE.",
)
@_run_option
@api_key_option
@click.pass_obj
def azure_assertion(
    cli: Cli,
    subject_template: tuple[str, ...],
    audience: str,
    duration: str | None,
    out: Path | None,
    run_id: str | None,
    api_key: str | None,
) -> None:
    """Print a fresh RS256 client assertion for Entra (audience api://AzureADTokenExchange).

    For tools that take a federated token or token file: `az login --federated-token`,
    azure-identity's WorkloadIdentityCredential (AZURE_FEDERATED_TOKEN_FILE). An
    assertion expires: mint a new one before it does, for every login.
    """
    with _source(cli, run_id, api_key) as source:
        minted = mint_assertion(
            source, subject_template=subject_template, audience=audience, duration=duration
        )
    if out is None:
        click.echo(minted.token)
        return
    # NOTE: the token alone, no newline: readers such as azure-identity send the file's
    # content as it is.
    replace_private(out, minted.token.encode("ascii"), own_directory=False)
    click.echo(
        f"federation: wrote an assertion for sub {minted.subject!r} to {out}; it expires at "
        f"{minted.expires_at.isoformat()}",
        err=True,
    )


COMMANDS: tuple[click.Command, ...] = (azure_assertion,)
