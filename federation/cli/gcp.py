"""Placeholder: the gcp commands are being written."""

from __future__ import annotations

import click


@click.command("gcp")
def exchange_gcp() -> None:
    """Trade a token for gcp credentials."""
    raise click.UsageError("not written yet")


@click.command("gcp")
def stand_in_gcp() -> None:
    """Serve the gcp stand-in."""
    raise click.UsageError("not written yet")


COMMANDS: tuple[click.Command, ...] = ()
