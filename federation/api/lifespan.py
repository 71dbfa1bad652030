"""The server's own background work: scheduled key rotation and the transparency log's
checkpoints (``federation.ledger``); and, at shutdown, the last audit rows written and
the issuing port's connections closed.

Every replica runs the schedule; the key store's lock and the "is one due?" decision
taken under it make exactly one of them publish each successor key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from federation.api.witnessing import witness_forever
from federation.issuing.pipeline import TokenIssuer
from federation.keys import Keyring
from federation.ledger import Ledger, sign_forever

log = logging.getLogger("federation.rotation")


async def rotate_forever(keyring: Keyring, period: timedelta, interval: float) -> None:
    while True:
        try:
            for record in await run_in_threadpool(keyring.rotate_due, period):
                log.info(
                    "rotation: published %s key %s; it signs from %s",
                    record.alg,
                    record.kid,
                    record.activates_at.isoformat(),
                )
        except Exception:  # NOTE: a failed round must not end the schedule
            log.exception("rotation: this round failed; the next one tries again")
        await asyncio.sleep(interval)


def server_lifespan(
    keyring: Keyring,
    period: timedelta,
    interval: float,
    *,
    issuer: TokenIssuer,
    ledger: Ledger | None = None,
    witnesses: Sequence[tuple[str, str]] = (),
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if period > timedelta(0):
            tasks.append(asyncio.create_task(rotate_forever(keyring, period, interval)))
        if ledger is not None:
            tasks.append(asyncio.create_task(sign_forever(ledger)))
            if witnesses:
                tasks.append(asyncio.create_task(witness_forever(ledger, witnesses)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await issuer.audit.drain()
            await issuer.store.close()

    return lifespan
