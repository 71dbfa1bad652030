"""``federation log``: audit the issuer's transparency log from outside: its signed
head, a token's inclusion proof, and a monitor to run from cron or CI."""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from federation.cli import witness
from federation.cli.common import Cli, api_key_option, output_option
from federation.cli.output import emit_json, emit_record

if TYPE_CHECKING:
    from federation.auditor.monitor import Alert, MonitorRun
    from federation.auditor.pinning import PinnedKey

# The monitor's exit codes besides 0: 1 (the log did not verify, as every
# LogVerificationFailed), 2 (usage, a bad rules or state file), 75 (try again later),
# 77 (the API key), and this one: the log verified, and rules report entries.
EXIT_ALERTS = 3
F = TypeVar("F", bound=Callable[..., Any])


def key_option(function: F) -> F:
    return click.option(
        "--key",
        metavar="VERIFIER_KEY",
        help="The log's note verifier key (name+id+base64) to check checkpoints with. "
        "Default: the one the issuer's discovery document names, only as trustworthy as the "
        "issuer: pin it (a monitor keeps the key of its first run).",
    )(function)


@click.group("log")
def log_group() -> None:
    """Audit the issuer's transparency log: its signed head, a token's proof, a monitor."""


@log_group.command("checkpoint")
@key_option
@api_key_option
@output_option("text", "json")
@click.pass_obj
def checkpoint_command(cli: Cli, key: str | None, api_key: str | None, output: str) -> None:
    """Print the log's latest checkpoint, once its signature verified.

    The text output is the signed note as served: keep it, with a later one that
    contradicts it, as evidence that the log forked."""
    from federation.auditor.pinning import open_latest, pin
    from federation.auditor.remote import RemoteLog

    with RemoteLog(cli.url, api_key) as log:
        pinned = pin(key, flag="--key", discover=log.discover)
        signed = log.checkpoint()
        head = open_latest(signed, pinned)
    if output == "json":
        emit_json(
            {
                "origin": head.origin,
                "size": head.size,
                "root": _b64(head.root),
                "verifier_key": pinned.text,
                "checkpoint": signed,
            }
        )
    else:
        click.echo(signed, nl=False)
    click.echo(
        f"federation: verified: {head.origin} at {head.size} entries, signed by the log key "
        f"from {pinned.source}",
        err=True,
    )


@log_group.command("prove")
@click.argument("token", required=False)
@click.option("--jti", help="Prove the token with this id instead (no TOKEN).")
@click.option(
    "--size", type=click.IntRange(1), help="Prove against this tree size. Default: the latest."
)
@key_option
@click.option(
    "--witness",
    multiple=True,
    metavar="VERIFIER_KEY",
    help="Also require this witness's cosignature on the checkpoint (repeatable).",
)
@click.option(
    "--wait",
    type=click.FloatRange(0, 60),
    default=0,
    show_default=True,
    help="Seconds to wait for a token just issued to be logged.",
)
@api_key_option
@output_option("text", "json")
@click.pass_obj
def prove_command(
    cli: Cli,
    token: str | None,
    jti: str | None,
    size: int | None,
    key: str | None,
    witness: tuple[str, ...],
    wait: float,
    api_key: str | None,
    output: str,
) -> None:
    """Prove that the log includes TOKEN (or - for stdin), or the token --jti names.

    The inclusion proof is checked here, against a checkpoint signed by the log key."""
    from federation.auditor.inclusion import parse_witness, prove
    from federation.auditor.pinning import pin
    from federation.auditor.remote import RemoteLog

    if (token is None) == (jti is None):
        raise click.UsageError("give a TOKEN or --jti, one of them")
    raw = _read(token) if token is not None else None
    witnesses = [parse_witness(text) for text in witness]
    with RemoteLog(cli.url, api_key) as log:
        pinned = pin(key, flag="--key", discover=log.discover)
        logged = prove(
            log, pinned.verifier, token=raw, jti=jti, size=size, witnesses=witnesses, wait=wait
        )
    record = {
        "index": logged.index,
        "tree_size": logged.head.size,
        "origin": logged.head.origin,
        "root": _b64(logged.head.root),
        "entry": dataclasses.asdict(logged.entry),
        "witnesses": list(logged.witnesses),
    }
    if output == "json":
        emit_json({**record, "checkpoint": logged.checkpoint, "verified": True})
    else:
        emit_record({k: v for k, v in record.items() if k not in ("entry", "witnesses")})
        click.echo("OK")
    where = _logged(logged.index, logged.head.size, pinned, logged.witnesses)
    click.echo(f"federation: verified: {where}", err=True)


@log_group.command("monitor")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The monitor's state file (JSON): the log key and the last tree verified. Created "
    "on the first run; replaced only after a run verified everything.",
)
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML file of [[rule]] tables: the new entries to report.",
)
@key_option
@click.option(
    "--from-latest",
    is_flag=True,
    help="On the first run, start at the latest checkpoint instead of reading the whole log.",
)
@api_key_option
@output_option("text", "json")
@click.pass_obj
def monitor_command(
    cli: Cli,
    state_path: Path,
    rules_path: Path | None,
    key: str | None,
    from_latest: bool,
    api_key: str | None,
    output: str,
) -> int:
    """Check that the log only grew since the last run, and report new entries by rules.

    Exits 0 when the log verified and no rule reports an entry, 1 when the log did not
    verify (a bad signature, a fork, a rollback, rewritten entries), 3 when it verified
    and rules report entries (each reported once: the state moves on); 2 for a bad rules
    or state file, 75 when the issuer does not answer, 77 for the API key. The state
    changes only on 0 and 3."""
    from federation.auditor.monitor import watch
    from federation.auditor.pinning import pin
    from federation.auditor.remote import RemoteLog
    from federation.auditor.rules import Rules
    from federation.auditor.state import MonitorState

    rules = Rules.from_file(rules_path) if rules_path is not None else Rules()
    state = MonitorState.load(state_path)
    with RemoteLog(cli.url, api_key) as log:
        pinned = pin(
            key,
            flag="--key",
            kept=state.verifier_key if state is not None else None,
            kept_in=f"the state file {state_path}",
            discover=log.discover,
        )
        run = watch(log, pinned.text, state, rules, from_latest=from_latest)
    run.state.save(state_path)
    _report(run, pinned, output)
    return EXIT_ALERTS if run.alerts else 0


def _report(run: MonitorRun, pinned: PinnedKey, output: str) -> None:
    head, previous = run.head, run.previous
    if output == "json":
        emit_json(
            {
                "origin": head.origin,
                "size": head.size,
                "root": _b64(head.root),
                "previous_size": previous.size if previous is not None else None,
                "entries_read": run.read,
                "alerts": [_alert_document(alert) for alert in run.alerts],
            }
        )
    else:
        for alert in run.alerts:
            click.echo(_alert_line(alert))
    if pinned.from_discovery:
        click.echo(
            f"federation: pinned the log key {pinned.text} from {pinned.source}; later runs "
            "hold the log to it",
            err=True,
        )
    since = f"since {previous.size}" if previous is not None else "on the first run"
    alerts = f"{len(run.alerts)} alert{'s' if len(run.alerts) != 1 else ''}"
    click.echo(
        f"federation: {head.origin} verified at {head.size} entries ({run.read} read {since}); "
        f"{alerts}",
        err=True,
    )


def _alert_document(alert: Alert) -> dict[str, Any]:
    return {"rule": alert.rule, "index": alert.index, "entry": dataclasses.asdict(alert.entry)}


def _alert_line(alert: Alert) -> str:
    """One line per alert; every value JSON-quoted, so that no subject can forge a line
    or reach the terminal's control sequences."""
    entry = dataclasses.asdict(alert.entry)
    fields = " ".join(
        f"{name}={json.dumps(entry[name])}"
        for name in ("sub", "aud", "iss", "run_id", "principal", "team", "jti", "iat", "exp")
    )
    return f"ALERT {json.dumps(alert.rule)} entry {alert.index}: {fields}"


def _logged(index: int, size: int, pinned: PinnedKey, witnesses: tuple[str, ...]) -> str:
    cosigned = f", cosigned by {', '.join(witnesses)}" if witnesses else ""
    return (
        f"entry {index} of the tree of {size} entries signed by the log key from "
        f"{pinned.source}{cosigned}"
    )


def _read(token: str) -> str:
    return sys.stdin.read().strip() if token == "-" else token  # noqa: S105


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


for command in witness.COMMANDS:  # `federation log witness`, `witness-key`, `witness-push`
    log_group.add_command(command)

COMMANDS = (log_group,)
