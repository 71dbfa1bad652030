"""JSON lines on a file descriptor: the access log's format and its cheap writer.

Every request writes a line, discovery and JWKS included, so the cost of a line counts
against the fastest answers the issuer gives. Two things keep it small: the record is
formatted by orjson, and lines are written together once per turn of the event loop (one
``write`` for every request that finished in that turn, instead of one each). A line
still leaves within the turn it was made in; outside an event loop, at once.

Several worker processes share one stderr. A pipe keeps a ``write`` of up to
``PIPE_BUF`` (4096) bytes whole, so a batch never exceeds that and always ends with a
line: lines from different workers never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import orjson

from federation.domain.secret_shapes import redact

BATCH_BYTES = 4096  # PIPE_BUF on Linux: the largest write a pipe keeps whole


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601, milliseconds), then the
    record's ``access`` fields (redacted by the access log), or else its level, logger
    and message, secrets redacted."""

    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        second, prefix = self._second
        if int(record.created) != second:  # NOTE: one strftime a second, not one a line
            second = int(record.created)
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, prefix)
        body: dict[str, object] = {"time": f"{prefix}.{int(record.msecs):03d}Z"}
        fields = getattr(record, "access", None)
        if isinstance(fields, dict):
            body.update(fields)
        else:
            message = redact(record.getMessage())
            body.update(level=record.levelname, logger=record.name, message=message)
        return orjson.dumps(body).decode()


class JsonLinesHandler(logging.Handler):
    """Writes formatted records as lines to ``fd``, batched per event-loop turn."""

    def __init__(self, fd: int = 2, formatter: logging.Formatter | None = None) -> None:
        super().__init__()
        self.fd = fd
        self.setFormatter(formatter or JsonFormatter())
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode("utf-8", "replace")[: BATCH_BYTES - 1] + b"\n"
        except Exception:
            self.handleError(record)
            return
        # NOTE: emit runs under the handler's lock (Handler.handle), as flush does
        if self._size + len(line) > BATCH_BYTES:
            self._write()
        self._pending.append(line)
        self._size += len(line)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write()  # no event loop in this thread: now
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            self._scheduled = False
            self._write()

    def close(self) -> None:
        self.flush()
        super().close()

    def _write(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            pass  # NOTE: a closed stderr must not fail the request being answered
