"""``federation keys ...`` and ``federation publish``: signing keys and their documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from federation.cli.common import Cli, api_key_option, output_option
from federation.cli.output import emit_json, emit_list, emit_record, emit_table

OUTPUT = output_option("text", "json")
KEY_COLUMNS = (
    "kid",
    "alg",
    "state",
    "created_at",
    "activates_at",
    "retires_at",
    "removed_at",
    "location",
)


@click.group()
def keys() -> None:
    """Signing keys (admin): list, rotate, retire, revoke."""


@keys.command("list")
@click.option("--local", is_flag=True, help="Read the key store directly, not the API.")
@api_key_option
@OUTPUT
@click.pass_obj
def keys_list(cli: Cli, local: bool, api_key: str | None, output: str) -> None:
    """Show every signing key: state, times, and where it lives."""
    if local:
        from federation.api.schemas import KeyOut

        keyring = _local_keyring()
        items = [KeyOut.model_validate(s).model_dump(mode="json") for s in keyring.statuses()]
        page = {"has_next_page": False, "next_cursor": None}
        emit_list({"items": items, "page_info": page}, KEY_COLUMNS, output)
        return
    with cli.client(api_key, admin_fallback=True) as client:
        emit_list(client.request("GET", "/api/v1/keys", params={"limit": 500}), KEY_COLUMNS, output)


@keys.command("rotate")
@click.option("--alg", type=click.Choice(["ES256", "RS256"]), help="Default: both.")
@api_key_option
@OUTPUT
@click.pass_obj
def keys_rotate(cli: Cli, alg: str | None, api_key: str | None, output: str) -> None:
    """Publish new keys now; they start signing after the lead time. An algorithm with
    a next key already keeps that one (at most one waits to sign): it is shown instead."""
    with cli.client(api_key, admin_fallback=True) as client:
        rotated = client.request("POST", "/api/v1/keys/rotate", json={"alg": alg})
    if output == "json":
        emit_json(rotated)
    else:
        rows = [
            {**item, "rotation": "new" if item["created"] else "existing"}
            for item in rotated["items"]
        ]
        emit_table(rows, ("rotation", *KEY_COLUMNS))
    for item in rotated["items"]:
        if not item["created"]:
            click.echo(
                f"federation: {item['alg']} key {item['kid']} was published already and "
                f"signs from {item['activates_at']}; no new key was made",
                err=True,
            )


@keys.command("retire")
@click.argument("kid")
@api_key_option
@OUTPUT
@click.pass_obj
def keys_retire(cli: Cli, kid: str, api_key: str | None, output: str) -> None:
    """Emergency: stop signing with KID now. Its tokens still verify until they expire."""
    with cli.client(api_key, admin_fallback=True) as client:
        change = client.request("POST", f"/api/v1/keys/{quote(kid, safe='')}/retire")
    _emit_change(change, output)


@keys.command("revoke")
@click.argument("kid")
@click.option("--yes", is_flag=True, help="Confirm: tokens signed by KID stop verifying.")
@api_key_option
@OUTPUT
@click.pass_obj
def keys_revoke(cli: Cli, kid: str, yes: bool, api_key: str | None, output: str) -> None:
    """Compromise: drop KID from the JWKS now. Every token it signed stops verifying."""
    if not yes:
        raise click.UsageError(
            "revoking breaks every unexpired token the key signed; add --yes to confirm "
            "(or retire it instead, which breaks nothing)"
        )
    with cli.client(api_key, admin_fallback=True) as client:
        change = client.request("POST", f"/api/v1/keys/{quote(kid, safe='')}/revoke")
    _emit_change(change, output)


@keys.command("new-kek")
def keys_new_kek() -> None:
    """Print a fresh key-encryption key for FEDERATION_KEK (the database key store)."""
    from federation.keys.kek import new_kek

    click.echo(new_kek())
    click.echo(
        "federation: keep it in a secret store; without it the keys cannot be read", err=True
    )


@keys.command("log-keys")
@OUTPUT
def keys_log_keys(output: str) -> None:
    """The transparency log's live note keys, newest first (reads the key store)."""
    from federation.server.runtime import opened_log_keys
    from federation.settings import load_settings

    settings = load_settings()
    with opened_log_keys(settings) as store:
        rows = [_log_key_row(settings.checkpoint_origin, key) for key in store.load()]
    if output == "json":
        emit_json({"items": rows})
    else:
        emit_table(rows, ("number", "verifier_key"))


@keys.command("rotate-log-key")
def keys_rotate_log_key() -> None:
    """Make a new transparency log key. Restart the servers: checkpoints are then
    signed by both keys until the old one is retired, so monitors can move their pin."""
    from federation.clock import SystemClock
    from federation.server.runtime import opened_log_keys
    from federation.settings import load_settings

    settings = load_settings()
    with opened_log_keys(settings) as store:
        created = store.create(SystemClock().now())
    row = _log_key_row(settings.checkpoint_origin, created)
    click.echo(f"log key {row['number']}: {row['verifier_key']}")
    click.echo(
        "federation: restart the servers; retire the old key (`federation keys "
        "retire-log-key N`) once every monitor and verifier pins the new one",
        err=True,
    )


@keys.command("retire-log-key")
@click.argument("number", type=int)
def keys_retire_log_key(number: int) -> None:
    """Destroy log key NUMBER's private key: it never signs again (restart the servers).
    The last live key cannot be retired: rotate first."""
    from federation.clock import SystemClock
    from federation.server.runtime import opened_log_keys
    from federation.settings import load_settings

    settings = load_settings()
    with opened_log_keys(settings) as store:
        live = [key.number for key in store.load()]
        if number in live and len(live) == 1:
            raise click.ClickException(
                f"log key {number} is the only live one; make its successor first "
                "(`federation keys rotate-log-key`)"
            )
        store.retire(number, SystemClock().now())
    click.echo(f"log key {number}: retired; restart the servers")


def _log_key_row(origin: str, key: Any) -> dict[str, Any]:
    return {"number": key.number, "verifier_key": key.verifier_key(origin)}


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write .well-known/openid-configuration, .well-known/jwks.json and the "
    "transparency log (log/checkpoint, log/tile/...) under this directory.",
)
@click.option(
    "--gcp-jwks",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JWKS to upload to a GCP workload identity provider (--jwk-json-path).",
)
def publish(out_dir: Path | None, gcp_jwks: Path | None) -> None:
    """Write the discovery and JWKS documents for static hosting of a private issuer,
    and the transparency log's checkpoint and tiles under DIR/log/.

    Reads the key store directly (the same settings as `serve`). Run it again after
    every rotation, and at least once per key lead time, so that the published JWKS
    shows a new key before it signs.
    """
    from federation.server.publishing import write_gcp_jwks, write_static

    if out_dir is None and gcp_jwks is None:
        raise click.UsageError("give --out DIR, --gcp-jwks FILE, or both")
    from federation.settings import load_settings

    settings = load_settings()
    keyring = _local_keyring(settings)
    if out_dir is not None:
        log_key = None
        if settings.transparency_log:
            from federation.clock import SystemClock
            from federation.server.publishing import write_log

            log_key, files = write_log(out_dir, settings, SystemClock())
            click.echo(
                f"wrote the transparency log: {len(files)} files under {out_dir / 'log'}", err=True
            )
        for path in write_static(out_dir, settings, keyring, log_key):
            click.echo(f"wrote {path}", err=True)
    if gcp_jwks is not None:
        write_gcp_jwks(gcp_jwks, keyring)
        click.echo(f"wrote {gcp_jwks}", err=True)


def _local_keyring(settings: Any = None) -> Any:
    from federation.clock import SystemClock
    from federation.server.runtime import open_keyring
    from federation.settings import load_settings

    keyring = open_keyring(settings or load_settings(), SystemClock())
    keyring.load()
    return keyring


def _emit_change(change: dict[str, Any], output: str) -> None:
    if output == "json":
        emit_json(change)
    else:
        emit_record({"key": change["key"], "replacement": change["replacement"] or "-"})
    for warning in change["warnings"]:
        click.echo(f"federation: warning: {warning}", err=True)


COMMANDS = (keys, publish)
