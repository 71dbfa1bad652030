"""Placeholder: the aws commands are being written."""

from __future__ import annotations

import click


@click.command("aws")
def exchange_aws() -> None:
    """Trade a token for aws credentials."""
    raise click.UsageError("not written yet")


@click.command("aws")
def stand_in_aws() -> None:
    """Serve the aws stand-in."""
    raise click.UsageError("not written yet")


COMMANDS: tuple[click.Command, ...] = ()
