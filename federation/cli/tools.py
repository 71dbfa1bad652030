"""``federation decode`` and ``federation verify``: look inside a token, or check it
against the issuer's live JWKS as a cloud would."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
import httpx

from federation.cli.common import Cli, api_key_option
from federation.cli.output import emit_json
from federation.client import IssuerUrl, unreachable
from federation.errors import IssuerUnreachable, ResourceUnavailable, VerificationFailed

if TYPE_CHECKING:
    from federation.keys.verify import Decoded


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
@click.option(
    "--require-logged",
    is_flag=True,
    help="Also require the token in the issuer's transparency log: its entry included, by "
    "a proof checked here, under a checkpoint signed by the log key.",
)
@click.option(
    "--log-key",
    metavar="VERIFIER_KEY",
    help="With --require-logged: the log's note verifier key to pin. Default: the one the "
    "issuer's discovery document names.",
)
@click.option(
    "--witness",
    multiple=True,
    metavar="VERIFIER_KEY",
    help="With --require-logged: also require this witness's cosignature on the checkpoint "
    "(repeatable).",
)
@click.option(
    "--log-wait",
    type=click.FloatRange(0, 60),
    default=0,
    show_default=True,
    help="With --require-logged: seconds to wait for a token just issued to be logged.",
)
@api_key_option
@click.pass_obj
def verify_command(
    cli: Cli,
    token: str,
    audience: str,
    issuer: str | None,
    leeway: int,
    require_logged: bool,
    log_key: str | None,
    witness: tuple[str, ...],
    log_wait: float,
    api_key: str | None,
) -> None:
    """Verify a token's signature, issuer, audience and lifetime against the live JWKS
    (and, with --require-logged, its place in the issuer's transparency log)."""
    from federation.keys.verify import fetch_issuer_keys, verify

    if not require_logged and (log_key is not None or witness or log_wait):
        raise click.UsageError("--log-key, --witness and --log-wait go with --require-logged")
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
    logged = ""
    if require_logged:
        logged = "; " + _logged(url, api_key, raw, decoded, log_key, witness, log_wait)
    emit_json({"header": decoded.header, "claims": decoded.claims})
    click.echo(
        f"federation: verified: signed by {keys.issuer} ({decoded.header.get('alg')} "
        f"key {decoded.header.get('kid')}) for {audience}{logged}",
        err=True,
    )


def _logged(
    url: str,
    api_key: str | None,
    token: str,
    decoded: Decoded,
    log_key: str | None,
    witness: tuple[str, ...],
    wait: float,
) -> str:
    """Checks that the issuer's log includes ``token`` and records what it carries;
    says where."""
    from federation.auditor.inclusion import check_claims, parse_witness, prove
    from federation.auditor.pinning import pin
    from federation.auditor.remote import RemoteLog

    witnesses = [parse_witness(text) for text in witness]
    with RemoteLog(url, api_key) as log:
        pinned = pin(log_key, flag="--log-key", discover=log.discover)
        found = prove(log, pinned.verifier, token=token, witnesses=witnesses, wait=wait)
    check_claims(found.entry, decoded.header, decoded.claims)
    cosigned = f", cosigned by {', '.join(found.witnesses)}" if found.witnesses else ""
    return (
        f"logged as entry {found.index} of {found.head.origin} at {found.head.size} entries, "
        f"signed by the log key from {pinned.source}{cosigned}"
    )


COMMANDS = (decode_command, verify_command)
