"""The ``federation`` command: thin — parse, call the library or the API, render."""

from __future__ import annotations

import os
import sys

import click

from federation import __version__
from federation.cli import (
    admin,
    console_sessions,
    exchange,
    federate,
    keys,
    log,
    policy,
    server,
    tools,
)
from federation.cli.common import Cli, cli_message
from federation.cli.pipes import closed_pipes_ignored
from federation.cli.sections import SectionedGroup, show_environment_variables
from federation.errors import FederationError

# click 8.2 and later: a group run without a command raises this (8.1 printed its help).
NO_ARGS_IS_HELP: tuple[type[click.UsageError], ...] = tuple(
    getattr(click.exceptions, name)
    for name in ("NoArgsIsHelpError",)
    if hasattr(click.exceptions, name)
)


@click.group(
    cls=SectionedGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="federation")
@click.option(
    "--url",
    envvar="FEDERATION_URL",
    metavar="URL",
    help="The issuer to talk to. Default: where `federation serve` would listen with this "
    "environment (FEDERATION_HOST, FEDERATION_PORT), else a loopback FEDERATION_ISSUER, "
    "else http://127.0.0.1:8080.",
)
@click.pass_context
def cli(ctx: click.Context, url: str | None) -> None:
    """OIDC identity tokens for agent runs, and the tools around them."""
    given_by = (
        "--url"
        if ctx.get_parameter_source("url") is click.core.ParameterSource.COMMANDLINE
        else "FEDERATION_URL"
    )
    ctx.obj = Cli(given_url=url, given_by=given_by)


for command in (
    *server.COMMANDS,
    *federate.COMMANDS,
    *admin.COMMANDS,
    *console_sessions.COMMANDS,
    *keys.COMMANDS,
    *exchange.COMMANDS,
    *tools.COMMANDS,
    *log.COMMANDS,
    *policy.COMMANDS,
):
    cli.add_command(command)
show_environment_variables(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors are one line on stderr and a non-zero exit, never a traceback;
    a reader that closes the output early changes no exit code."""
    with closed_pipes_ignored():
        code = _run(argv)
    if code:
        sys.exit(code)


def _run(argv: list[str] | None) -> int:
    """The command's exit code, its error (if any) printed as one line."""
    try:
        result = cli.main(args=argv, prog_name="federation", standalone_mode=False)
    except FederationError as error:
        click.echo(cli_message(error), err=True)
        return error.exit_status
    except NO_ARGS_IS_HELP as error:
        # NOTE: `federation` or `federation runs` alone asks what there is: help on
        # stdout and exit 0, as git, kubectl and gh answer.
        click.echo(error.ctx.get_help() if error.ctx else error.format_message())
        return 0
    except click.exceptions.Abort:
        click.echo("federation: aborted", err=True)
        return 130
    except click.UsageError as error:
        hint = f"; see `{error.ctx.command_path} --help`" if error.ctx else ""
        click.echo(f"federation: {error.format_message().rstrip('.')}{hint}", err=True)
        return error.exit_code
    except click.ClickException as error:
        click.echo(f"federation: {error.format_message()}", err=True)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get("FEDERATION_DEBUG") == "1":
            raise
        # NOTE: one line, never a traceback (FEDERATION_DEBUG=1 shows it).
        click.echo(f"federation: unexpected error ({type(error).__name__})", err=True)
        return 1
    return result if isinstance(result, int) else 0
