"""A request that waits on the database past its budget is answered ``503`` at once.

The store bounds each wait on its own (``federation.store.deadlines``), which frees the
thread and the connection; but a connect may take ``connect_timeout`` (2 s at least in
libpq) and a request may wait several times. So each request gets a
:class:`DatabaseBudget`: its handler runs in a task of its own, charging its waits to
the budget, and once :data:`REQUEST_BUDGET` seconds of waiting are spent, before any of
the answer was sent, the client is answered ``503 resource_unavailable`` with
``Retry-After``. The task is left to fail by its own deadline; what it sends afterwards
is dropped, and it never commits (``refuse_if_abandoned``), so a client that retries
the 503 does not find the first attempt's rows. Only a commit already on its way when
the budget runs out may still land, as with any connection that breaks mid-commit.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.api.middleware.size_limits import send_problem
from federation.api.problems import database_unavailable
from federation.store.deadlines import REQUEST_BUDGET, DatabaseBudget, charging

log = logging.getLogger("federation.api")

# NOTE: the next look at a budget is when it would be spent if the request were waiting
# on the database all along; never sooner than this, so a spent budget is no busy loop.
_SHORTEST_LOOK = 0.01


class DatabaseDeadlineMiddleware:
    def __init__(self, app: ASGIApp, *, budget: float = REQUEST_BUDGET) -> None:
        self.app = app
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = DatabaseBudget(self.budget)
        answer = _Answer(receive, send)

        async def handle() -> None:
            await self.app(scope, answer.receive, answer.send)

        task = asyncio.create_task(handle(), context=charging(budget))
        try:
            while True:
                if await _ended_within(task, max(budget.remaining(), _SHORTEST_LOOK)):
                    break
                if answer.started:
                    await task  # NOTE: the answer has begun: it can no longer be a 503
                    return
                if budget.remaining() <= 0:
                    answer.abandon()
                    budget.abandon()
                    _abandoned.add(task)  # NOTE: the loop holds tasks weakly
                    task.add_done_callback(_ended)
                    log.error(
                        "request abandoned after %.1f s waiting on the database (trace %s)",
                        budget.seconds,
                        (scope.get("state") or {}).get("trace_id"),
                    )
                    error = database_unavailable(
                        f"the database did not answer within {budget.seconds:g} s"
                    )
                    await send_problem(scope, send, error)
                    return
        except asyncio.CancelledError:
            task.cancel()
            raise
        task.result()


class _Answer:
    """The handler's ``receive`` and ``send``, cut off once its request is abandoned."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.started = False
        self.abandoned = False

    async def receive(self) -> Message:
        if self.abandoned:
            return {"type": "http.disconnect"}
        return await self._receive()

    async def send(self, message: Message) -> None:
        if self.abandoned:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    def abandon(self) -> None:
        self.abandoned = True


async def _ended_within(task: asyncio.Task[None], seconds: float) -> bool:
    """Whether ``task`` ends within ``seconds``; it runs on either way (half the cost
    of ``asyncio.wait``, which every request pays)."""
    waiter = asyncio.get_running_loop().create_future()
    wake = partial(_settle, waiter)
    task.add_done_callback(wake)
    timer = asyncio.get_running_loop().call_later(seconds, wake, None)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()


def _settle(waiter: asyncio.Future[None], _: object) -> None:
    if not waiter.done():
        waiter.set_result(None)


_abandoned: set[asyncio.Task[None]] = set()


def _ended(task: asyncio.Task[None]) -> None:
    """What became of an abandoned request (its answer, if any, was dropped)."""
    _abandoned.discard(task)
    if task.cancelled():
        return
    failure = task.exception()
    if failure is not None:
        log.info("abandoned request ended: %s", type(failure).__name__)
