"""The ``federation`` command: thin — parse, call the library or the API, render."""

from __future__ import annotations

import os
import sys

import click

from federation import __version__
from federation.cli import admin, exchange, federate, keys, policy, server, tools
from federation.cli.common import Cli
from federation.errors import FederationError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="federation")
@click.option(
    "--url",
    envvar="FEDERATION_URL",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The issuer to talk to (env FEDERATION_URL).",
)
@click.pass_context
def cli(ctx: click.Context, url: str) -> None:
    """OIDC identity tokens for agent runs, and the tools around them."""
    ctx.obj = Cli(url=url)


for command in (
    *server.COMMANDS,
    *federate.COMMANDS,
    *admin.COMMANDS,
    *keys.COMMANDS,
    *exchange.COMMANDS,
    *tools.COMMANDS,
    *policy.COMMANDS,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors are one line on stderr and a non-zero exit, never a traceback."""
    try:
        result = cli.main(args=argv, prog_name="federation", standalone_mode=False)
    except FederationError as error:
        click.echo(f"federation: {error.message}", err=True)
        sys.exit(error.exit_status)
    except click.exceptions.Abort:
        click.echo("federation: aborted", err=True)
        sys.exit(130)
    except click.UsageError as error:
        hint = f"; see `{error.ctx.command_path} --help`" if error.ctx else ""
        click.echo(f"federation: {error.format_message().rstrip('.')}{hint}", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        click.echo(f"federation: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:
        if os.environ.get("FEDERATION_DEBUG") == "1":
            raise
        # NOTE: one line, never a traceback (FEDERATION_DEBUG=1 shows it).
        click.echo(f"federation: unexpected error ({type(error).__name__})", err=True)
        sys.exit(1)
    if isinstance(result, int) and result:
        sys.exit(result)
