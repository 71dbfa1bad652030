"""The server's own background work: scheduled key rotation; and, at shutdown, the
last audit rows written and the issuing port's connections closed.

Every replica runs the schedule; the key store's lock and the "is one due?" decision
taken under it make exactly one of them publish each successor key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from federation.issuing.pipeline import TokenIssuer
from federation.keys import Keyring

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
    keyring: Keyring, period: timedelta, interval: float, *, issuer: TokenIssuer
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None
        if period > timedelta(0):
            task = asyncio.create_task(rotate_forever(keyring, period, interval))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await issuer.audit.drain()
            await issuer.store.close()

    return lifespan
