"""``federation console-sessions revoke``: sign out of the console everywhere (admin)."""

from __future__ import annotations

import click

from federation.cli.common import Cli, api_key_option, output_option
from federation.cli.output import emit_json


@click.group("console-sessions")
def console_sessions() -> None:
    """Web console sessions (admin)."""


@console_sessions.command("revoke")
@click.option("--principal", "principal_uid", help="Only this principal's sessions.")
@api_key_option
@output_option("text", "json")
@click.pass_obj
def console_sessions_revoke(
    cli: Cli, principal_uid: str | None, api_key: str | None, output: str
) -> None:
    """Sign out everywhere: end every console session now (API keys keep working)."""
    body = {"principal_uid": principal_uid} if principal_uid else {}
    with cli.client(api_key, admin_fallback=True) as client:
        ended = client.request("POST", "/api/v1/console-sessions/revoke", json=body)
    if output == "json":
        emit_json(ended)
        return
    whose = f" of {principal_uid}" if principal_uid else ""
    click.echo(f"ended {ended['revoked']} console session(s){whose}", err=True)


COMMANDS = (console_sessions,)
