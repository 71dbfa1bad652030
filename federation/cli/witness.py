"""``federation log witness``, ``log witness-key`` and ``log witness-push``: a C2SP
``tlog-witness`` that cosigns the log's checkpoints, its key, and pushing a checkpoint
to it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from federation.cli.common import Cli, api_key_option
from federation.errors import InvalidRequest

# The auditor's layers load inside the commands: the CLI must start light (issue-token).

DEFAULT_PORT = 7380


@click.command("witness")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The witness's private key file (`federation log witness-key` makes one).",
)
@click.option(
    "--log",
    "log_keys",
    required=True,
    multiple=True,
    metavar="VERIFIER_KEY",
    help="A log to witness: its note verifier key (<origin>+<key ID>+<base64 key>), as the "
    "issuer's discovery document gives it. Repeat for more logs, or a log's next key.",
)
@click.option(
    "--state",
    "state_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the witness keeps the latest checkpoint it cosigned per log (created if "
    "missing; keep it: it is what makes a rollback visible).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every IPv4 address).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (0: any free one; the URL is printed).",
)
def witness_command(
    key_file: Path, log_keys: tuple[str, ...], state_file: Path, host: str, port: int
) -> None:
    """Serve a C2SP tlog-witness: it checks that each checkpoint a log pushes extends the
    last one it cosigned, then cosigns it (POST /add-checkpoint)."""
    from federation.auditor.witness import Witness, load_key_file, parse_log_keys, serve
    from federation.auditor.witness_state import WitnessState
    from federation.clock import SystemClock
    from federation.observability import logs

    logs.configure()
    try:
        verifiers = parse_log_keys(log_keys)
    except InvalidRequest as exc:
        raise InvalidRequest(f"--log: {exc.detail}") from None
    signer = load_key_file(key_file, SystemClock())
    state = WitnessState.open(state_file)
    try:
        witness = Witness(signer, verifiers, state)

        def started(url: str) -> None:
            click.echo(
                f"federation: witness {signer.name} on {url}, cosigning "
                f"{', '.join(witness.origins)}; its key: {signer.verifier.verifier_key}",
                err=True,
            )
            sys.stderr.flush()

        serve(witness, host=host, port=port, started=started)
    finally:
        state.close()


@click.command("witness-key")
@click.option(
    "--name",
    required=True,
    help="The witness's name: a schema-less URL that identifies it, such as "
    "witness.example.org/w1 (one key per name).",
)
@click.option(
    "--out",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (mode 0600; never over an existing file).",
)
def witness_key_command(name: str, key_file: Path) -> None:
    """Create a witness key; prints its verifier key, what readers pin with
    `--witness`."""
    from federation.auditor.witness import create_key_file
    from federation.clock import SystemClock

    signer = create_key_file(key_file, name, SystemClock())
    click.echo(signer.verifier.verifier_key)
    click.echo(f"federation: witness key written to {key_file} (mode 0600)", err=True)


@click.command("witness-push")
@click.argument("witness_url")
@click.option(
    "--witness-key",
    metavar="KEY",
    help="The witness's verifier key: its cosignature is then verified too.",
)
@api_key_option
@click.pass_obj
def witness_push_command(
    cli: Cli, witness_url: str, witness_key: str | None, api_key: str | None
) -> None:
    """Have a witness cosign the issuer's newest checkpoint (with a consistency proof
    from the size it last cosigned); prints the cosigned checkpoint."""
    from federation.auditor.inclusion import parse_witness
    from federation.auditor.remote import RemoteLog
    from federation.auditor.witness_push import WitnessClient, push_checkpoint

    verifier = None
    if witness_key is not None:
        try:
            verifier = parse_witness(witness_key)
        except InvalidRequest as exc:
            raise InvalidRequest(f"--witness-key: {exc.detail}") from None
    with RemoteLog(cli.url, api_key) as log, WitnessClient(witness_url) as witness:
        pushed = push_checkpoint(log, witness, witness_key=verifier)
    click.echo(pushed.note, nl=False)
    checkpoint, cosignature = pushed.checkpoint, pushed.cosignature
    said = (
        f"{cosignature.name} cosigned at {cosignature.time.isoformat()}"
        if cosignature
        else "cosigned (not verified: pass --witness-key to check it)"
    )
    click.echo(
        f"federation: {checkpoint.origin} at size {checkpoint.size}: {said}",
        err=True,
    )


COMMANDS: tuple[click.Command, ...] = (witness_command, witness_key_command, witness_push_command)
