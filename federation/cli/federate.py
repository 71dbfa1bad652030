"""``federation issue-token``: the flags and environment of ``oz federate issue-token``."""

from __future__ import annotations

import os
from datetime import datetime

import click

from federation.cli.common import Cli, GreedyCommand, api_key_option, output_option
from federation.cli.output import emit_json
from federation.durations import format_duration, parse_duration


class IssueTokenCommand(GreedyCommand):
    greedy = ("--subject-template",)


@click.command("issue-token", cls=IssueTokenCommand)
@click.option(
    "--run-id", envvar="OZ_RUN_ID", required=True, help="The run to issue for (env OZ_RUN_ID)."
)
@click.option("--audience", required=True, help="The aud claim: what the cloud expects.")
@click.option("--duration", help="Lifetime: 15m, 1h, 2h30m.  [default: the issuer's, 1h]")
@click.option(
    "--subject-template",
    multiple=True,
    help="Components joined into sub, e.g. --subject-template teams environment.",
)
@api_key_option
@output_option("text", "json", "pretty")
@click.pass_obj
def issue_token(
    cli: Cli,
    run_id: str,
    audience: str,
    duration: str | None,
    subject_template: tuple[str, ...],
    api_key: str | None,
    output: str,
) -> None:
    """Issue an OIDC identity token for the current run.

    The workload token comes from WARP_WORKLOAD_TOKEN, which the run's environment sets.
    """
    requested = parse_duration(duration) if duration is not None else None
    body: dict[str, object] = {"run_id": run_id, "audience": audience}
    if duration is not None:
        body["duration"] = duration
    if subject_template:
        body["subject_template"] = list(subject_template)
    headers = {}
    workload_token = os.environ.get("WARP_WORKLOAD_TOKEN")
    if workload_token:
        headers["X-Warp-Ambient-Workload-Token"] = workload_token
    with cli.client(api_key) as client:
        answer = client.request("POST", "/api/v1/federate/issue-token", json=body, headers=headers)
    granted = int((_time(answer["expires_at"]) - _time(answer["issued_at"])).total_seconds())
    if requested is not None and granted < requested:
        click.echo(
            f"federation: requested {format_duration(requested)}, granted "
            f"{format_duration(granted)} (the issuer's maximum)",
            err=True,
        )
    if output == "json":
        emit_json(
            {
                "token": answer["token"],
                "expires_at": answer["expires_at"],
                "issuer": answer["issuer"],
            }
        )
    elif output == "pretty":
        click.echo(f"Token: {answer['token']}")
        click.echo(f"Expires at: {answer['expires_at']}")
        click.echo(f"Issuer: {answer['issuer']}")
    else:
        click.echo(answer["token"])


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


COMMANDS = (issue_token,)
