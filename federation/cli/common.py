"""What the commands share: the target issuer, API keys, output options."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from federation._internal.urls import is_loopback
from federation.cli.output import FORMATS
from federation.client import DEFAULT_ORIGIN, ApiClient, IssuerUrl
from federation.errors import FederationError, InvalidIssuerUrl, InvalidRequest, NotAuthorized

F = TypeVar("F", bound=Callable[..., Any])

# Where `federation serve` listens when nothing says otherwise (see federation.settings).
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", "8080"


@dataclass
class Cli:
    """What the commands share: the issuer URL given (by ``--url`` or
    ``FEDERATION_URL``, which ``given_by`` names), if any."""

    given_url: str | None = None
    given_by: str = "FEDERATION_URL"

    @cached_property
    def url(self) -> IssuerUrl:
        """The issuer to talk to, worked out when a command first needs it (a command
        that talks to no issuer never fails on a bad FEDERATION_PORT)."""
        return issuer_url(self.given_url, self.given_by, os.environ)

    def client(self, api_key: str | None, *, admin_fallback: bool = False) -> ApiClient:
        # NOTE: the admin key file serves only an issuer on this machine: a stray
        # FEDERATION_URL must not carry the admin key anywhere else.
        local = is_loopback(urlsplit(self.url).hostname)
        key = api_key or (admin_key_from_file() if admin_fallback and local else None)
        if not key:
            hint = ", or run `federation init` for the admin key file" if admin_fallback else ""
            raise InvalidRequest(f"no API key: set WARP_API_KEY or pass --api-key{hint}")
        return ApiClient(self.url, key)


def issuer_url(given: str | None, given_by: str, environ: Mapping[str, str]) -> IssuerUrl:
    """The issuer the CLI talks to, the first of:

    1. the URL given by ``--url`` or ``FEDERATION_URL``;
    2. where ``federation serve`` in this environment listens, when
       ``FEDERATION_HOST`` or ``FEDERATION_PORT`` is set (a wildcard address through
       loopback): the server of ``make run`` in another terminal;
    3. ``FEDERATION_ISSUER``, when it names a loopback address: a local issuer's URL;
    4. ``http://127.0.0.1:8080``, where ``federation serve`` listens by default.

    The URL remembers which it was, so an error can name the setting to change."""
    if given:
        return IssuerUrl(given, given_by)
    host = environ.get("FEDERATION_HOST", "").strip()
    port = environ.get("FEDERATION_PORT", "").strip()
    if host or port:
        named = [
            name for name, value in (("FEDERATION_HOST", host), ("FEDERATION_PORT", port)) if value
        ]
        return IssuerUrl(
            _listening_url(host or DEFAULT_HOST, port or DEFAULT_PORT), " and ".join(named)
        )
    issuer = environ.get("FEDERATION_ISSUER", "").strip()
    if issuer and _on_loopback(issuer):
        return IssuerUrl(issuer, "FEDERATION_ISSUER")
    return IssuerUrl(f"http://{DEFAULT_HOST}:{DEFAULT_PORT}", DEFAULT_ORIGIN)


def _listening_url(host: str, port: str) -> str:
    """The URL that reaches a server listening on ``host``:``port``."""
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise InvalidIssuerUrl(
            f"FEDERATION_PORT {port!r} is not a port number (1 to 65535); fix it, or set "
            "FEDERATION_URL"
        )
    host = host.strip("[]")
    # NOTE: a server on every address (0.0.0.0, ::) answers on loopback too.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{int(port)}"


def _on_loopback(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in {"http", "https"} and is_loopback(parts.hostname)
    except ValueError:
        return False


def cli_message(error: FederationError) -> str:
    """An error's one line, in the CLI's words: the variables a CLI user sets, not
    the HTTP headers they travel in."""
    if isinstance(error, NotAuthorized) and "X-Warp-Ambient-Workload-Token" in (error.detail or ""):
        # NOTE: the issuer asks for the header; the CLI sends it from WARP_WORKLOAD_TOKEN.
        error.detail = (
            "a token is issued only from inside its run: set WARP_WORKLOAD_TOKEN to the "
            "run's workload token (the wlt-... that `federation runs create` printed)"
        )
    return f"federation: {error.message}"


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
        rest = super().parse_args(ctx, expand_greedy(args, self.greedy))
        for param in self.params:
            if "--subject-template" in param.opts:
                check_space_separated(ctx.params.get(param.name or "") or ())
        return rest


_COMPONENT = re.compile(r"[a-z_]{1,40}")


def check_space_separated(template: tuple[str, ...]) -> None:
    """``--subject-template teams,environment`` is one unknown component to the issuer;
    say how to write two."""
    if not any("," in value for value in template):
        return
    parts = [part.strip() for value in template for part in value.split(",") if part.strip()]
    # NOTE: the user's words are repeated only when they look like component names.
    named = bool(parts) and all(_COMPONENT.fullmatch(part) for part in parts)
    example = " ".join(parts) if named else "teams environment"
    raise click.UsageError(
        "--subject-template takes components separated by spaces, not commas: "
        f"--subject-template {example}"
    )


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
