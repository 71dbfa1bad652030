"""Where one issue-token request's time goes: each stage timed alone, in process.

The load runs say how fast issue-token is against hello; they cannot say why. This
breaks one request down, on the same data and in the same process, into what it does:
the key's and the run's reads through the issuing port (one call), the checks and claims,
the signature, the audit row's commit through the group commit; then the whole of
the issuing pipeline (:class:`federation.issuing.pipeline.TokenIssuer`), and the whole
request through the real ASGI application, called directly as an ASGI server would call
it (no socket, no HTTP parsing), next to hello's the same way. Hence two derived numbers:

- ``framework``: the ASGI request less the pipeline: routing, validation, middleware
  and the response;
- the ``bound``: hello / request in process, CPU per request with 16 requests in flight
  (the throughput a busy core allows), the best ratio to hello this path could
  reach before the HTTP server's own cost, which both pay alike, is added.

Every stage is microseconds per operation, the median over rounds of N iterations;
the stages are interleaved round by round, so that a noisy moment hits them all. The
issuer's home is new (``federation init``'s :func:`federation.server.runtime.initialize` in a
temporary directory), seeded through the library with a user in one team, a personal
``federate`` key and a run in progress, and the application is the one a server worker
builds (:func:`federation.server.runtime.worker_app`).

It runs in a child process pinned to one core (``python -m benchmarks.stages
--database-url URL``, printing one JSON line), like the mint benchmark, so that pinning
never pins the servers and the load generator the harness starts later. ``--log off``
takes the same request apart with the transparency log off: the difference is what the
log costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp as AsgiApp
from starlette.types import Message

from benchmarks.pinned import pinned_cpu, run_child
from benchmarks.servers import UNLIMITED
from federation.api.deps import AppContext
from federation.clock import SystemClock
from federation.issuing.pipeline import IssueRequest, audit_entry
from federation.registry.auth import authenticate, presented_digest
from federation.server.runtime import initialize, worker_app
from federation.settings import load_settings
from federation.store import Store
from tests.seeding import seed_user_run

ISSUER = "https://issuer.example.com"
ISSUE_PATH = "/api/v1/federate/issue-token"
AUDIENCE = "sts.amazonaws.com"
SUBJECT_TEMPLATE = ("teams", "environment")
ROUNDS = 3
FULL_ITERATIONS = 1000
# NOTE: a PostgreSQL commit waits for its flush (milliseconds here): fewer iterations
# keep `make bench` within its five minutes
POSTGRES_ITERATIONS = 150
SMOKE_ITERATIONS = 20

READS = "key and run read (one call)"
CHECKS = "checks + claims"
SIGN = "sign"
AUDIT = "audit row, committed alone (group commit of one)"
PIPELINE = "issuing pipeline (whole)"
ASGI_REQUEST = "ASGI request (whole)"
ASGI_HELLO = "ASGI hello (whole)"
PARTS = (READS, CHECKS, SIGN, AUDIT)  # what the pipeline does
MEASURED = (*PARTS, PIPELINE, ASGI_REQUEST, ASGI_HELLO)
FRAMEWORK = "framework (ASGI request - pipeline)"
REST = "rest of the pipeline (pipeline - its stages)"

CONCURRENT = 16  # requests in flight, as wrk's 16 connections keep them
LOAD_NOTE = (
    f"under load: CPU per request (user + system, all threads) with {CONCURRENT} requests in "
    "flight, for the pipeline, the ASGI request and hello; the bound is hello's CPU per "
    "request over issue-token's"
)
AUDIT_NOTE = (
    "audit row: each iteration hands the group commit the row of a token prepared and "
    "signed before the timed loop (a fresh jti each) and awaits its commit, alone in its "
    "batch: a lone request's cost; under load one commit serves many rows"
)


@dataclass(frozen=True)
class Stage:
    """One stage: µs per operation (median over rounds), its share of the ASGI request;
    ``derived`` stages are differences of measured ones, not timed themselves."""

    name: str
    us: float
    share: float | None
    derived: bool = False
    rounds_us: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class StageBreakdown:
    """One database's breakdown; ``skipped`` or ``error`` when there is none."""

    database: str
    iterations: int = 0
    rounds: int = 0
    cpu: int | None = None
    loop: str = ""
    stages: list[Stage] = field(default_factory=list)
    bound: float | None = None  # ASGI hello / ASGI request, CPU per request under load
    under_load: dict[str, float] = field(default_factory=dict)  # CPU µs per request
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None

    def stage(self, name: str) -> Stage | None:
        for found in self.stages:
            if found.name == name:
                return found
        return None


@dataclass(frozen=True)
class Tenant:
    key: str
    run_id: str
    workload_token: str


# ----------------------------------------------------------------------------- set-up


@contextmanager
def issuer_home(
    database_url: str | None, *, transparency_log: bool = True
) -> Iterator[tuple[Path, str]]:
    """A new issuer home in a temporary directory, initialized as ``federation init``
    does, with the process's environment pointing at it (and at nothing else); yields
    the home and its database URL (by default, a SQLite file in the home)."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="federation-bench-stages-") as tmp:
        home = Path(tmp)
        url = database_url or f"sqlite:///{home / 'var' / 'federation.db'}"
        for name in [n for n in os.environ if n.startswith("FEDERATION_")]:
            del os.environ[name]
        os.environ.update(
            {
                "FEDERATION_ISSUER": ISSUER,
                "FEDERATION_DATABASE_URL": url,
                "FEDERATION_KEYS_DIR": str(home / "keys"),
                "FEDERATION_ADMIN_KEY_FILE": str(home / "var" / "admin-api-key"),
                "FEDERATION_TRANSPARENCY_LOG": "on" if transparency_log else "off",
                **UNLIMITED,
            }
        )
        try:
            initialize(load_settings(), SystemClock())
            yield home, url
        finally:
            os.environ.clear()
            os.environ.update(saved)


def seed(database_url: str, admin_key: str) -> Tenant:
    """A user in one team, a personal federate key for it and a run in progress, made
    through the library as the API makes them."""
    clock = SystemClock()
    store = Store.from_url(database_url, create=False)
    try:
        with store.session() as session:
            admin = authenticate(session, admin_key, clock.now())
            seeded = seed_user_run(
                session,
                admin,
                clock.now(),
                uid="bench",
                team="platform",
                environment="staging",
                agent_name="nightly-deploy",
                skill_spec="acme/infra:deploy",
                host="warp",
            )
            tenant = Tenant(
                key=seeded.key, run_id=seeded.run_id, workload_token=seeded.workload_token
            )
    finally:
        store.dispose()
    return tenant


# ------------------------------------------------------------------------------ ASGI


@dataclass(frozen=True)
class AsgiCall:
    """One HTTP request, handed to an ASGI application as a server would hand it."""

    method: str
    path: str
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes = b""

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode("ascii"),
            "query_string": b"",
            "root_path": "",
            "headers": list(self.headers),
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }

    async def __call__(self, app: AsgiApp) -> int:
        """The answer's status; the whole body is received, as a server would send it."""
        sent_body = False
        status = 0

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        await app(self.scope(), receive, send)
        return status


def issue_request(tenant: Tenant) -> IssueRequest:
    """What :func:`issue_call` asks for, as the pipeline takes it."""
    return IssueRequest(
        run_id=tenant.run_id,
        audience=AUDIENCE,
        subject_template=SUBJECT_TEMPLATE,
        workload_token=tenant.workload_token,
    )


def issue_call(tenant: Tenant) -> AsgiCall:
    body = json.dumps(
        {
            "run_id": tenant.run_id,
            "audience": AUDIENCE,
            "subject_template": list(SUBJECT_TEMPLATE),
        }
    ).encode()
    headers = (
        (b"host", b"127.0.0.1:8000"),
        (b"authorization", f"Bearer {tenant.key}".encode()),
        (b"x-warp-ambient-workload-token", tenant.workload_token.encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    )
    return AsgiCall(method="POST", path=ISSUE_PATH, headers=headers, body=body)


HELLO_CALL = AsgiCall(method="GET", path="/hello", headers=((b"host", b"127.0.0.1:8000"),))


def new_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    """uvloop, as the server runs, when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"
    return uvloop.new_event_loop(), "uvloop"


# --------------------------------------------------------------------------- timing

Timer = Callable[[int], float]  # runs n operations, returns seconds spent on them


def _timed(operation: Callable[[], object]) -> Timer:
    def timer(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            operation()
        return time.perf_counter() - start

    return timer


def stage_timers(
    context: AppContext,
    tenant: Tenant,
    app: AsgiApp,
    hello: AsgiApp,
    loop: asyncio.AbstractEventLoop,
) -> dict[str, Timer]:
    """A timer per measured stage, each on the same data as the whole request."""
    issuer = context.issuer
    port = issuer.store
    request = issue_request(tenant)
    digest = presented_digest(tenant.key)
    caller = loop.run_until_complete(issuer.authenticate(tenant.key))
    run = loop.run_until_complete(port.run(tenant.run_id))
    if run is None:
        raise RuntimeError(f"run {tenant.run_id} was not found")
    prepared = issuer.claims_for(caller, run, request)

    def on_loop(operation: Callable[[], Awaitable[object]]) -> Timer:
        async def batch(n: int) -> float:
            start = time.perf_counter()
            for _ in range(n):
                await operation()
            return time.perf_counter() - start

        return lambda n: loop.run_until_complete(batch(n))

    def audit(n: int) -> float:
        entries = [
            audit_entry(
                caller,
                issuer.minter.sign(issuer.claims_for(caller, run, request)),
                request,
                logged=issuer.transparency_log,  # the log's entry, as the pipeline appends it
            )
            for _ in range(n)
        ]

        async def batch() -> float:
            start = time.perf_counter()
            for entry in entries:
                await issuer.audit.record(entry)
            return time.perf_counter() - start

        return loop.run_until_complete(batch())

    async def whole() -> object:
        return await issuer.issue_for_key(tenant.key, request)

    def asgi(target: AsgiApp, call: AsgiCall) -> Timer:
        async def one() -> None:
            status = await call(target)
            if status != 200:
                raise RuntimeError(f"{call.method} {call.path} answered {status}")

        return on_loop(one)

    return {
        READS: on_loop(lambda: port.caller_and_run(digest, tenant.run_id)),
        CHECKS: _timed(lambda: issuer.claims_for(caller, run, request)),
        SIGN: _timed(lambda: issuer.minter.sign(prepared)),
        AUDIT: audit,
        PIPELINE: on_loop(whole),
        ASGI_REQUEST: asgi(app, issue_call(tenant)),
        ASGI_HELLO: asgi(hello, HELLO_CALL),
    }


def breakdown(per_round: dict[str, list[float]]) -> list[Stage]:
    """The stages' medians, the derived stages, and every share of the ASGI request."""
    us = {name: statistics.median(values) for name, values in per_round.items()}
    us[FRAMEWORK] = us[ASGI_REQUEST] - us[PIPELINE]
    us[REST] = us[PIPELINE] - sum(us[name] for name in PARTS)
    request = us[ASGI_REQUEST]
    order = [*PARTS, REST, PIPELINE, FRAMEWORK, ASGI_REQUEST, ASGI_HELLO]
    return [
        Stage(
            name=name,
            us=round(us[name], 2),
            share=round(us[name] / request, 3) if request > 0 else None,
            derived=name in (FRAMEWORK, REST),
            rounds_us=[round(value, 2) for value in per_round.get(name, [])],
        )
        for name in order
    ]


def measure(
    database_url: str | None,
    iterations: int,
    rounds: int,
    cpu: int | None,
    *,
    transparency_log: bool = True,
) -> StageBreakdown:
    """Set up an issuer home on ``database_url`` (None: SQLite in the home), its
    transparency log on or off, and time every stage there."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    from benchmarks.hello import create_app as hello_app

    loop, loop_name = new_loop()
    try:
        with issuer_home(database_url, transparency_log=transparency_log) as (home, url):
            admin_key = (home / "var" / "admin-api-key").read_text().strip()
            tenant = seed(url, admin_key)
            app = worker_app(load_settings())
            context: AppContext = app.state.context
            database = context.store.dialect
            try:
                timers = stage_timers(context, tenant, app, hello_app(), loop)
                warmup = max(1, iterations // 10)
                for timer in timers.values():
                    timer(warmup)
                per_round: dict[str, list[float]] = {name: [] for name in MEASURED}
                for _ in range(rounds):
                    for name in MEASURED:
                        per_round[name].append(timers[name](iterations) / iterations * 1e6)
                under_load = cpu_under_load(context, tenant, app, hello_app(), loop, iterations)
            finally:
                loop.run_until_complete(context.issuer.audit.drain())
                loop.run_until_complete(context.issuer.store.close())
                context.store.dispose()
    finally:
        loop.close()
    stages = breakdown(per_round)
    notes = [AUDIT_NOTE, LOAD_NOTE]
    return StageBreakdown(
        database=database,
        iterations=iterations,
        rounds=rounds,
        cpu=cpu,
        loop=loop_name,
        stages=stages,
        bound=round(under_load[ASGI_HELLO] / under_load[ASGI_REQUEST], 3)
        if under_load[ASGI_REQUEST] > 0
        else None,
        under_load=under_load,
        notes=notes,
    )


def cpu_under_load(
    context: AppContext,
    tenant: Tenant,
    app: AsgiApp,
    hello: AsgiApp,
    loop: asyncio.AbstractEventLoop,
    iterations: int,
) -> dict[str, float]:
    """CPU (user + system, every thread of the process: the flush thread too) per
    request with :data:`CONCURRENT` requests in flight, as under load: what bounds
    throughput on a busy core, where a lone request's wall time mostly waits."""
    issuer = context.issuer
    request = issue_request(tenant)
    issue = issue_call(tenant)

    async def pipeline() -> None:
        await issuer.issue_for_key(tenant.key, request)

    async def asgi_request() -> None:
        await issue(app)

    async def asgi_hello() -> None:
        await HELLO_CALL(hello)

    total = max(iterations, 20 * CONCURRENT) // CONCURRENT * CONCURRENT
    spent: dict[str, float] = {}
    for name, operation in (
        (PIPELINE, pipeline),
        (ASGI_REQUEST, asgi_request),
        (ASGI_HELLO, asgi_hello),
    ):

        async def worker(operation: Callable[[], Awaitable[None]] = operation) -> None:
            for _ in range(total // CONCURRENT):
                await operation()

        async def together() -> None:
            await asyncio.gather(*(worker() for _ in range(CONCURRENT)))

        loop.run_until_complete(together())  # warm
        before = os.times()
        loop.run_until_complete(together())
        after = os.times()
        used = (after.user - before.user) + (after.system - before.system)
        spent[name] = round(used / total * 1e6, 1)
    return spent


# ----------------------------------------------------------------- child process


def run_pinned(
    database_url: str | None, iterations: int, rounds: int = ROUNDS, timeout: float = 300.0
) -> StageBreakdown:
    """:func:`measure` in a child process pinned to one core."""
    arguments = [
        *(["--database-url", database_url] if database_url else []),
        "--iterations",
        str(iterations),
        "--rounds",
        str(rounds),
    ]
    return from_dict(run_child("benchmarks.stages", arguments, timeout))


def from_dict(data: dict[str, Any]) -> StageBreakdown:
    """The breakdown as the child process printed it (``asdict``)."""
    stages = [Stage(**stage) for stage in data["stages"]]
    return StageBreakdown(**{**data, "stages": stages})


def table(result: StageBreakdown) -> list[list[str]]:
    """Rows of stage, µs, share of the ASGI request."""
    return [
        [
            f"{stage.name}{' (derived)' if stage.derived else ''}",
            f"{stage.us:,.1f}",
            "-" if stage.share is None else f"{stage.share:.1%}",
        ]
        for stage in result.stages
    ]


def summary_line(result: StageBreakdown) -> str:
    """The whole request, the direct issue, hello, and the bound, on one line."""
    if result.skipped:
        return f"skipped ({result.skipped})"
    if result.error:
        return f"failed: {result.error}"
    us = {stage.name: stage.us for stage in result.stages}
    bound = "-" if result.bound is None else f"{result.bound:.2f}"
    load = result.under_load
    return (
        f"ASGI request {us.get(ASGI_REQUEST, 0):,.0f} µs = pipeline "
        f"{us.get(PIPELINE, 0):,.0f} + framework {us.get(FRAMEWORK, 0):,.0f}; "
        f"ASGI hello {us.get(ASGI_HELLO, 0):,.0f} µs; under load, CPU per request: "
        f"pipeline {load.get(PIPELINE, 0):,.0f}, ASGI request {load.get(ASGI_REQUEST, 0):,.0f}, "
        f"hello {load.get(ASGI_HELLO, 0):,.0f} µs; bound (hello / request) {bound}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages", description=__doc__)
    parser.add_argument(
        "--database-url", default=None, help="default: a SQLite file in the temporary home"
    )
    parser.add_argument("--cpu", type=int, default=None, help="default: the last allowed core")
    parser.add_argument("--iterations", type=int, default=FULL_ITERATIONS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument(
        "--log", choices=("on", "off"), default="on", help="the transparency log (default: on)"
    )
    parser.add_argument("--table", action="store_true", help="also print the table to stderr")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.rounds < 1:
        parser.error("--iterations and --rounds must be positive")
    cpu = pinned_cpu() if args.cpu is None else args.cpu
    result = measure(
        args.database_url, args.iterations, args.rounds, cpu, transparency_log=args.log == "on"
    )
    if args.table:
        for row in table(result):
            print(" | ".join(row), file=sys.stderr)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
