"""Management commands: principals, API keys, runs, signing keys, the audit log, whoami.

They call the HTTP API. Without ``--api-key``/``WARP_API_KEY`` they fall back to the
bootstrap admin key file that ``federation init`` wrote, when it is readable.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from federation.cli.common import Cli, api_key_option, output_option, paging_options
from federation.cli.output import emit_json, emit_list, emit_one
from federation.domain.run_states import RunState

OUTPUT = output_option("text", "json")


@click.command()
@api_key_option
@OUTPUT
@click.pass_obj
def whoami(cli: Cli, api_key: str | None, output: str) -> None:
    """Show the principal and key you act as."""
    with cli.client(api_key, admin_fallback=True) as client:
        emit_one(client.request("GET", "/api/v1/whoami"), output)


# ---- principals -----------------------------------------------------------------------


@click.group()
def principals() -> None:
    """Users and service accounts (admin)."""


@principals.command("create")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["user", "service_account"]),
    required=True,
    help="A person (user) or a machine identity (service_account).",
)
@click.option(
    "--uid",
    required=True,
    help="Its unique id (a token's sub is user:UID or service_account:UID by default).",
)
@click.option("--email", help="Its email address (a token's email claim).")
@click.option("--display-name", help="A name for people to read.")
@click.option("--team", "teams", multiple=True, help="A team membership (repeatable).")
@api_key_option
@OUTPUT
@click.pass_obj
def principals_create(
    cli: Cli,
    kind: str,
    uid: str,
    email: str | None,
    display_name: str | None,
    teams: tuple[str, ...],
    api_key: str | None,
    output: str,
) -> None:
    """Create a principal."""
    body = {"type": kind, "uid": uid, "email": email, "display_name": display_name, "teams": teams}
    with cli.client(api_key, admin_fallback=True) as client:
        emit_one(client.request("POST", "/api/v1/principals", json=body), output)


@principals.command("list")
@paging_options
@api_key_option
@OUTPUT
@click.pass_obj
def principals_list(
    cli: Cli, limit: int, cursor: str | None, api_key: str | None, output: str
) -> None:
    """List principals, newest first."""
    with cli.client(api_key, admin_fallback=True) as client:
        page = client.request(
            "GET", "/api/v1/principals", params={"limit": limit, "cursor": cursor}
        )
    emit_list(page, ("type", "uid", "email", "display_name", "teams", "created_at"), output)


@principals.command("get")
@click.argument("uid")
@api_key_option
@OUTPUT
@click.pass_obj
def principals_get(cli: Cli, uid: str, api_key: str | None, output: str) -> None:
    """Show one principal."""
    with cli.client(api_key, admin_fallback=True) as client:
        emit_one(client.request("GET", f"/api/v1/principals/{_segment(uid)}"), output)


# ---- API keys -------------------------------------------------------------------------


@click.group("api-keys")
def api_keys() -> None:
    """API keys: admins manage all, users their own personal keys."""


@api_keys.command("create")
@click.option("--name", required=True, help="A label to tell the key apart, e.g. laptop.")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["personal", "agent"]),
    default="personal",
    show_default=True,
    help="personal: a user's own key; agent: a service account's, for its runs.",
)
@click.option("--principal", "principal_uid", help="Whose key (default: your own).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(["federate", "runs:write", "audit", "admin"]),
    help="Repeatable; default federate.",
)
@click.option(
    "--expires-in",
    type=click.Choice(["1d", "30d", "90d", "never"]),
    default="30d",
    show_default=True,
    help="How long the key works.",
)
@api_key_option
@OUTPUT
@click.pass_obj
def api_keys_create(
    cli: Cli,
    name: str,
    kind: str,
    principal_uid: str | None,
    scopes: tuple[str, ...],
    expires_in: str,
    api_key: str | None,
    output: str,
) -> None:
    """Create an API key. The raw key is printed once; store it now."""
    body = {
        "name": name,
        "type": kind,
        "principal_uid": principal_uid,
        "scopes": list(scopes) or ["federate"],
        "expires_in": expires_in,
    }
    with cli.client(api_key, admin_fallback=True) as client:
        created = client.request("POST", "/api/v1/api-keys", json=body)
    if output == "json":
        emit_json(created)
        return
    click.echo(created["key"])
    click.echo(
        f"created {created['type']} key {created['id']} ({created['name']}) for "
        f"{created['principal_uid']}; it is not shown again",
        err=True,
    )


@api_keys.command("list")
@click.option("--principal", "principal_uid", help="Only this principal's keys (uid).")
@paging_options
@api_key_option
@OUTPUT
@click.pass_obj
def api_keys_list(
    cli: Cli,
    principal_uid: str | None,
    limit: int,
    cursor: str | None,
    api_key: str | None,
    output: str,
) -> None:
    """List API keys (masked), newest first."""
    params = {"limit": limit, "cursor": cursor, "principal_uid": principal_uid}
    with cli.client(api_key, admin_fallback=True) as client:
        page = client.request("GET", "/api/v1/api-keys", params=params)
    columns = ("id", "name", "type", "principal_uid", "scopes", "masked_key", "expires_at")
    emit_list(page, (*columns, "last_used_at"), output)


@api_keys.command("delete")
@click.argument("key_id")
@api_key_option
@click.pass_obj
def api_keys_delete(cli: Cli, key_id: str, api_key: str | None) -> None:
    """Delete an API key; it stops working at once."""
    with cli.client(api_key, admin_fallback=True) as client:
        client.request("DELETE", f"/api/v1/api-keys/{_segment(key_id)}")
    click.echo(f"deleted {key_id}", err=True)


# ---- runs -----------------------------------------------------------------------------

STATES = click.Choice([state.value for state in RunState])


@click.group()
def runs() -> None:
    """Runs (runs:write): register them and move their state."""


@runs.command("create")
@click.option("--run-id", help="Default: generated.")
@click.option(
    "--principal", "principal_uid", required=True, help="Whose run it is (uid); it asks the tokens."
)
@click.option("--team", "team_uid", help="The team the run works for (the teams component).")
@click.option("--environment", help="Where it works, e.g. staging (the environment component).")
@click.option("--agent-name", help="The agent's name (the agent_name component).")
@click.option("--skill-spec", help="The skill it runs, e.g. acme/infra:deploy.")
@click.option("--host", help="warp for hosted runs, or the worker id.")
@click.option(
    "--state",
    type=STATES,
    default="QUEUED",
    show_default=True,
    help="Its first state; tokens are issued only while it is CLAIMED or INPROGRESS.",
)
@api_key_option
@OUTPUT
@click.pass_obj
def runs_create(cli: Cli, /, api_key: str | None, output: str, **fields: str | None) -> None:
    """Register a run. Prints its workload token once (the run's WARP_WORKLOAD_TOKEN)."""
    with cli.client(api_key, admin_fallback=True) as client:
        emit_one(client.request("POST", "/api/v1/runs", json=fields), output)


@runs.command("list")
@click.option("--state", type=STATES, help="Only runs in this state.")
@click.option("--principal", "principal_uid", help="Only this principal's runs (uid).")
@click.option("--environment", help="Only runs in this environment.")
@paging_options
@api_key_option
@OUTPUT
@click.pass_obj
def runs_list(
    cli: Cli,
    /,
    api_key: str | None,
    output: str,
    limit: int,
    cursor: str | None,
    **filters: str | None,
) -> None:
    """List runs, newest first."""
    with cli.client(api_key, admin_fallback=True) as client:
        page = client.request(
            "GET", "/api/v1/runs", params={"limit": limit, "cursor": cursor, **filters}
        )
    emit_list(
        page, ("run_id", "state", "principal_uid", "team_uid", "environment", "agent_name"), output
    )


@runs.command("get")
@click.argument("run_id")
@api_key_option
@OUTPUT
@click.pass_obj
def runs_get(cli: Cli, run_id: str, api_key: str | None, output: str) -> None:
    """Show one run."""
    with cli.client(api_key, admin_fallback=True) as client:
        emit_one(client.request("GET", f"/api/v1/runs/{_segment(run_id)}"), output)


@runs.command("set-state")
@click.argument("run_id")
@click.argument("state", type=STATES, metavar="STATE")
@api_key_option
@OUTPUT
@click.pass_obj
def runs_set_state(cli: Cli, run_id: str, state: str, api_key: str | None, output: str) -> None:
    """Move a run to another state (a finished run stays finished).

    STATE is one of QUEUED, PENDING, CLAIMED, INPROGRESS, SUCCEEDED, FAILED, BLOCKED,
    ERROR, CANCELLED."""
    with cli.client(api_key, admin_fallback=True) as client:
        emit_one(
            client.request("PATCH", f"/api/v1/runs/{_segment(run_id)}", json={"state": state}),
            output,
        )


# ---- the audit log -------------------------------------------------------------------


@click.group()
def tokens() -> None:
    """The audit log of issued tokens (admin)."""


@tokens.command("list")
@click.option("--run-id", help="Only tokens issued for this run.")
@click.option("--principal", "principal_uid", help="Only tokens issued to this principal (uid).")
@click.option("--audience", help="Only tokens for this audience (aud).")
@paging_options
@api_key_option
@OUTPUT
@click.pass_obj
def tokens_list(
    cli: Cli,
    /,
    api_key: str | None,
    output: str,
    limit: int,
    cursor: str | None,
    **filters: str | None,
) -> None:
    """List issued tokens, newest first (never the tokens themselves)."""
    with cli.client(api_key, admin_fallback=True) as client:
        page = client.request(
            "GET", "/api/v1/tokens", params={"limit": limit, "cursor": cursor, **filters}
        )
    emit_list(
        page, ("jti", "run_id", "subject", "audience", "alg", "issued_at", "expires_at"), output
    )


def _segment(value: str) -> str:
    """A value as one URL path segment."""
    return quote(value, safe="")


COMMANDS = (whoami, principals, api_keys, runs, tokens)
