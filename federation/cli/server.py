"""``federation init`` and ``federation serve``: the commands that run on the issuer host."""

from __future__ import annotations

import os

import click

# The server's layers load inside the commands: the CLI must start light (issue-token).


@click.command()
@click.option(
    "--reset-admin-key",
    is_flag=True,
    help="Delete the bootstrap admin key and create a new one (if its file was lost).",
)
def init(reset_admin_key: bool) -> None:
    """Create or migrate the database, create missing signing keys, and create the
    bootstrap admin key once. Safe to run again."""
    from federation.clock import SystemClock
    from federation.server.runtime import initialize, key_location
    from federation.settings import load_settings

    settings = load_settings()
    report = initialize(settings, SystemClock(), reset_admin_key=reset_admin_key)
    click.echo(f"database: schema at revision {report.revision}")
    for record in report.created_keys:
        where = record.location or key_location(settings)
        click.echo(f"signing key: created {record.alg} {record.kid} in {where}")
    if report.log_keys:
        newest = report.log_keys[0].verifier_key(settings.checkpoint_origin)
        click.echo(f"transparency log: verifier key {newest}")
    if report.admin_key is None:
        click.echo(
            f"admin key: already created (file {settings.admin_key_file}); it is not shown "
            "again. Lost it? Run `federation init --reset-admin-key`."
        )
        return
    click.echo(f"admin key: written to {report.admin_key_file} (mode 0600). It is shown once:")
    click.echo(report.admin_key)


@click.command()
@click.option(
    "--host",
    envvar="FEDERATION_HOST",
    help="Address to listen on (0.0.0.0: every IPv4 address).  [default: 127.0.0.1]",
)
@click.option(
    "--port",
    envvar="FEDERATION_PORT",
    type=click.IntRange(1, 65535),
    help="Port to listen on; the CLI on this machine finds the server there.  [default: 8080]",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes, each serving requests on the same port.",
)
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the issuer (after `federation init`)."""
    from federation._internal import ports
    from federation.clock import SystemClock
    from federation.observability import logs, metrics_files
    from federation.server import serving
    from federation.server.runtime import key_location, prepare
    from federation.settings import load_settings

    logs.configure()
    overrides = {name: value for name, value in (("host", host), ("port", port)) if value}
    settings = load_settings(**overrides)
    # NOTE: a port anything listens on is refused before the database is touched
    with ports.reserve(settings.host, settings.port) as guard:
        clock = SystemClock()
        store, _ = prepare(settings, clock)
        click.echo(
            f"federation: issuer {settings.issuer} on http://{settings.host}:{settings.port} "
            f"({store.dialect}, keys in {key_location(settings)})",
            err=True,
        )
        store.dispose()
        # Worker processes build their own application from the same environment.
        os.environ.update({f"FEDERATION_{k.upper()}": str(v) for k, v in overrides.items()})
        os.environ.setdefault("FEDERATION_ISSUER", settings.issuer)
        if settings.metrics != "off":
            # NOTE: before the workers exist: they write to this server's own directory
            metrics_files.share(metrics_files.claim(settings.metrics_dir).path)  # locked till exit
        serving.run(
            "federation.server.runtime:app_from_environment",
            host=settings.host,
            port=settings.port,
            workers=workers,
            drain=settings.shutdown_drain,
            reserved=guard,
        )


COMMANDS = (init, serve)
