"""Rendering for the CLI: JSON for scripts, aligned columns for people."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

FORMATS = ("text", "json", "pretty")


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False))


def emit_token(token: str, expires_at: datetime, issuer: str, output: str) -> None:
    """An issued token, printed as ``oz federate issue-token`` prints it: ``text`` the
    token alone; ``json`` and ``ndjson`` one compact line; ``pretty`` three lines."""
    expires = rfc3339(expires_at)
    if output in ("json", "ndjson"):
        document = {"token": token, "expires_at": expires, "issuer": issuer}
        click.echo(json.dumps(document, separators=(",", ":")))
    elif output == "pretty":
        click.echo(f"Token: {token}\nExpires at: {expires}\nIssuer: {issuer}")
    else:
        click.echo(token)


def rfc3339(moment: datetime) -> str:
    """A time as the Oz client writes it (chrono's ``to_rfc3339``): in UTC, as
    ``+00:00``, with a fraction of a second only when there is one."""
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    if not utc.microsecond:
        return utc.isoformat(timespec="seconds")
    return utc.isoformat(timespec="milliseconds" if utc.microsecond % 1000 == 0 else "microseconds")


def emit_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def emit_record(record: Mapping[str, Any]) -> None:
    flat = dict(_flatten(record))
    width = max((len(key) for key in flat), default=0)
    for key, value in flat.items():
        click.echo(f"{key.ljust(width)}  {_cell(value)}")


def _flatten(record: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested objects as dotted keys: ``key.id``, ``key.name``."""
    rows: list[tuple[str, Any]] = []
    for key, value in record.items():
        if isinstance(value, Mapping):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def emit_list(document: Mapping[str, Any], columns: Sequence[str], output: str) -> None:
    if output == "json":
        emit_json(document)
        return
    emit_table(document["items"], columns)
    page = document.get("page_info") or {}
    if page.get("has_next_page"):
        click.echo(f"more: --cursor {page['next_cursor']}", err=True)


def emit_one(document: Mapping[str, Any], output: str) -> None:
    if output == "json":
        emit_json(document)
    else:
        emit_record(document)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "-"
    return str(value)
