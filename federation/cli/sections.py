"""The help of ``federation``: commands grouped by the task they serve, and every
option that reads an environment variable saying so in one way, ``[env var: X]``."""

from __future__ import annotations

from collections.abc import Iterator

import click

# The root's commands by task, in the order a newcomer meets them (the README's
# walk-through): run a server, manage it, issue tokens, trade them, test policies.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Run the server", ("init", "serve", "publish")),
    (
        "Manage the issuer",
        ("whoami", "principals", "api-keys", "runs", "tokens", "keys", "console-sessions"),
    ),
    ("Issue and check tokens", ("issue-token", "decode", "verify", "log")),
    (
        "Exchange for cloud credentials",
        (
            "exchange",
            "aws-web-identity",
            "aws-credential-process",
            "gcp-credential-config",
            "azure-assertion",
        ),
    ),
    ("Test IAM policies, offline", ("policy", "stand-in")),
)
OTHER = "Other commands"


class SectionedGroup(click.Group):
    """A group whose help lists its commands under :data:`SECTIONS`; a command no
    section names is listed under "Other commands" (a test keeps that list empty)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        visible = {
            name: command
            for name in self.list_commands(ctx)
            if (command := self.get_command(ctx, name)) is not None and not command.hidden
        }
        if not visible:
            return
        for title, names in sections(visible):
            limit = formatter.width - 6 - max(len(name) for name in names)
            rows = [(name, visible[name].get_short_help_str(limit)) for name in names]
            with formatter.section(title):
                formatter.write_dl(rows)


def sections(commands: dict[str, click.Command]) -> Iterator[tuple[str, list[str]]]:
    """The sections that hold any of ``commands``, with the names they hold, in order."""
    placed: set[str] = set()
    for title, names in SECTIONS:
        present = [name for name in names if name in commands]
        placed.update(present)
        if present:
            yield title, present
    rest = sorted(set(commands) - placed)
    if rest:
        yield OTHER, rest


def show_environment_variables(command: click.Command) -> None:
    """Let every option of ``command`` and its subcommands that reads an environment
    variable show it in its help, as click does (``[env var: X]``)."""
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar:
            param.show_envvar = True
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            show_environment_variables(sub)
