"""A reader that stops early (``federation policy test ... | head -1``) changes nothing
but what it reads: the command runs to its end, its exit code stands, and no
traceback or "Exception ignored" line is printed."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO, cast


class ClosedPipeSafe:
    """A text stream that, once its reader has gone (EPIPE), drops what is written to
    it instead of raising. Only what ``click.echo`` and logging use is offered; no
    ``buffer``, so that nothing writes around it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_gone = False

    @property
    def encoding(self) -> str:
        return self._stream.encoding

    @property
    def errors(self) -> str | None:
        return self._stream.errors

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._reader_left()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_left()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def _reader_left(self) -> None:
        self.reader_gone = True
        # NOTE: what the stream still holds is flushed at exit; sent to /dev/null it
        # cannot fail there (a failed flush at exit prints a warning and exits 120).
        with contextlib.suppress(OSError, ValueError):
            descriptor = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, descriptor)
            finally:
                os.close(null)


@contextlib.contextmanager
def closed_pipes_ignored() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` as :class:`ClosedPipeSafe`, restored after."""
    saved = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, ClosedPipeSafe(sys.stdout))
    sys.stderr = cast(TextIO, ClosedPipeSafe(sys.stderr))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
