"""``federation decode`` and ``federation verify``: look inside a token, or check it
against the issuer's live JWKS as a cloud would."""

from __future__ import annotations

import sys

import click
import httpx

from federation.cli.common import Cli
from federation.cli.output import emit_json
from federation.client import IssuerUrl, unreachable
from federation.errors import IssuerUnreachable, ResourceUnavailable, VerificationFailed


def _read(token: str) -> str:
    return sys.stdin.read().strip() if token == "-" else token  # noqa: S105


@click.command("decode")
@click.argument("token")
def decode_command(token: str) -> None:
    """Print a token's header and claims WITHOUT verifying it (TOKEN or - for stdin)."""
    from federation.keys.verify import decode

    decoded = decode(_read(token))
    emit_json({"header": decoded.header, "claims": decoded.claims})
    click.echo("federation: not verified; use `federation verify` to check it", err=True)


@click.command("verify")
@click.argument("token")
@click.option("--audience", required=True, help="The audience you expect (aud).")
@click.option(
    "--issuer",
    help="The issuer you expect; its discovery and JWKS are fetched. Default: the issuer "
    "the CLI talks to (--url).",
)
@click.option(
    "--leeway",
    type=click.IntRange(0, 300),
    default=0,
    show_default=True,
    help="Clock leeway, seconds.",
)
@click.pass_obj
def verify_command(cli: Cli, token: str, audience: str, issuer: str | None, leeway: int) -> None:
    """Verify a token's signature, issuer, audience and lifetime against the live JWKS."""
    from federation.keys.verify import fetch_issuer_keys, verify

    raw = _read(token)
    url = IssuerUrl(issuer, "--issuer") if issuer is not None else cli.url
    with httpx.Client(timeout=10.0) as client:
        try:
            keys = fetch_issuer_keys(url, client)
        except ResourceUnavailable as error:
            if isinstance(error.__cause__, httpx.TransportError):
                raise IssuerUnreachable(unreachable(url, url.origin, error.__cause__)) from None
            raise
    if issuer is not None and keys.issuer != issuer:
        raise VerificationFailed(f"{issuer} calls itself {keys.issuer} in its discovery document")
    decoded = verify(raw, keys, audience=audience, leeway=leeway)
    emit_json({"header": decoded.header, "claims": decoded.claims})
    click.echo(
        f"federation: verified: signed by {keys.issuer} ({decoded.header.get('alg')} "
        f"key {decoded.header.get('kid')}) for {audience}",
        err=True,
    )


COMMANDS = (decode_command, verify_command)
