"""Placeholder: the azure commands are being written."""

from __future__ import annotations

import click


@click.command("azure")
def exchange_azure() -> None:
    """Trade a token for an Entra access token."""
    raise click.UsageError("not written yet")


COMMANDS: tuple[click.Command, ...] = ()
