"""What the commands share: the target issuer, API keys, output options."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from federation._internal.urls import is_loopback
from federation.cli.output import FORMATS
from federation.client import ApiClient
from federation.errors import InvalidRequest

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Cli:
    url: str

    def client(self, api_key: str | None, *, admin_fallback: bool = False) -> ApiClient:
        # NOTE: the admin key file serves only an issuer on this machine: a stray
        # FEDERATION_URL must not carry the admin key anywhere else.
        local = is_loopback(urlsplit(self.url).hostname)
        key = api_key or (admin_key_from_file() if admin_fallback and local else None)
        if not key:
            hint = ", or run `federation init` for the admin key file" if admin_fallback else ""
            raise InvalidRequest(f"no API key: set WARP_API_KEY or pass --api-key{hint}")
        return ApiClient(self.url, key)


def admin_key_from_file() -> str | None:
    """The bootstrap admin key that `init` wrote, when this user can read it."""
    path = Path(os.environ.get("FEDERATION_ADMIN_KEY_FILE", "var/admin-api-key"))
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def api_key_option(function: F) -> F:
    return click.option(
        "--api-key",
        envvar="WARP_API_KEY",
        show_envvar=True,
        help="API key (wk-...). Prefer the environment variable: flags end up in shell history.",
    )(function)


def output_option(*choices: str) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        return click.option(
            "--output-format",
            "output",
            type=click.Choice(choices or FORMATS),
            default="text",
            show_default=True,
            help="How to print the result.",
        )(function)

    return decorate


def paging_options(function: F) -> F:
    function = click.option("--cursor", help="next_cursor of the previous page.")(function)
    return click.option(
        "--limit",
        type=click.IntRange(1, 500),
        default=20,
        show_default=True,
        help="Items per page.",
    )(function)


class GreedyCommand(click.Command):
    """Lets the options in ``greedy`` take several values after one flag, as the Oz CLI
    does: ``--subject-template teams environment``."""

    greedy: tuple[str, ...] = ()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_greedy(args, self.greedy))


def expand_greedy(args: list[str], names: tuple[str, ...]) -> list[str]:
    """``--x a b --y`` becomes ``--x a --x b --y``."""
    expanded: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            expanded.extend(args[index:])
            break
        index += 1
        if arg not in names:
            expanded.append(arg)
            continue
        values = []
        while index < len(args) and not args[index].startswith("-"):
            values.append(args[index])
            index += 1
        if not values:
            raise click.UsageError(f"{arg} requires at least one value")
        for value in values:
            expanded += [arg, value]
    return expanded
