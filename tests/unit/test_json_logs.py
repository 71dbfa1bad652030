"""The JSON-lines handler: whole lines, one write per event-loop turn, never more than a
pipe keeps whole."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator

import orjson
import pytest

from federation.observability.json_logs import BATCH_BYTES, JsonLinesHandler


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    yield read, write
    os.close(read)
    os.close(write)


def record(number: int, padding: str = "") -> logging.LogRecord:
    made = logging.LogRecord("federation.access", logging.INFO, "", 0, "request", (), None)
    made.access = {"n": number, "padding": padding}
    return made


def reads(fd: int) -> list[bytes]:
    """Each ``read`` of what is waiting in the pipe: a write each, while writes are small."""
    found: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return found
        found.append(chunk)


def test_without_an_event_loop_each_line_is_written_at_once(pipe: tuple[int, int]) -> None:
    read, write = pipe
    handler = JsonLinesHandler(write)
    handler.handle(record(1))
    assert orjson.loads(b"".join(reads(read)))["n"] == 1
    handler.handle(record(2))
    assert orjson.loads(b"".join(reads(read)))["n"] == 2


def test_lines_of_one_loop_turn_leave_in_one_write(pipe: tuple[int, int]) -> None:
    read, write = pipe
    handler = JsonLinesHandler(write)

    async def turn() -> tuple[list[bytes], list[bytes]]:
        for number in range(5):
            handler.handle(record(number))
        before = reads(read)
        await asyncio.sleep(0)
        return before, reads(read)

    before, after = asyncio.run(turn())
    assert before == []
    assert len(after) == 1
    assert [orjson.loads(line)["n"] for line in after[0].splitlines()] == [0, 1, 2, 3, 4]


def test_batches_stay_within_one_atomic_pipe_write(pipe: tuple[int, int]) -> None:
    read, write = pipe
    handler = JsonLinesHandler(write)
    written: list[bytes] = []

    async def turn() -> None:
        for number in range(40):
            handler.handle(record(number, "x" * 300))
            written.extend(reads(read))
        await asyncio.sleep(0)
        written.extend(reads(read))

    asyncio.run(turn())
    assert len(written) > 1
    assert all(len(chunk) <= BATCH_BYTES and chunk.endswith(b"\n") for chunk in written)
    lines = b"".join(written).splitlines()
    assert [orjson.loads(line)["n"] for line in lines] == list(range(40))


def test_close_writes_what_is_pending(pipe: tuple[int, int]) -> None:
    read, write = pipe
    handler = JsonLinesHandler(write)

    async def turn() -> None:
        handler.handle(record(7))
        handler.close()

    asyncio.run(turn())
    assert orjson.loads(b"".join(reads(read)))["n"] == 7
