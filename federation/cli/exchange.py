"""``federation exchange aws|gcp|azure`` and ``federation stand-in aws|gcp``."""

from __future__ import annotations

import click

from federation.cli import aws, azure, gcp


@click.group()
def exchange() -> None:
    """Trade a token for cloud credentials, from inside a run."""


@click.group("stand-in")
def stand_in() -> None:
    """Serve a local stand-in for a cloud's token service, on loopback."""


for command in (aws.exchange_aws, gcp.exchange_gcp, azure.exchange_azure):
    exchange.add_command(command)
for command in (aws.stand_in_aws, gcp.stand_in_gcp):
    stand_in.add_command(command)

COMMANDS = (exchange, stand_in, *aws.COMMANDS, *gcp.COMMANDS, *azure.COMMANDS)
