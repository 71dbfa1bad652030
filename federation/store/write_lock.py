"""One writer at a time on a SQLite file, queued in the kernel rather than by polling.

SQLite lets one connection write at a time; a second writer that finds the file locked
sleeps in SQLite's busy handler, for 1, 2, 5, 10 ... 100 ms at a time, whether or not
the lock is freed in between. Under concurrent issuance that sleeping, not the work,
set the latency (p50 133 ms at 16 connections, the performance note). Commits instead
queue on a thread lock and an ``flock`` on a file beside the database, which wake the
next writer as soon as the lock is released, in this process and in the other workers.
PostgreSQL needs nothing of the kind.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Protocol


class WriteLock(Protocol):
    def held(self) -> AbstractContextManager[None]: ...


class NoWriteLock:
    """PostgreSQL's (or an in-memory database's): writers need no queue of ours."""

    def held(self) -> AbstractContextManager[None]:
        return nullcontext()


class FileWriteLock:
    """A lock shared by the threads of a process and, through ``path``, by processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            fd = self._descriptor()
            fcntl.flock(fd, fcntl.LOCK_EX)  # NOTE: releases the GIL while it waits
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _descriptor(self) -> int:
        # NOTE: opened on first use, in the process that uses it: a descriptor
        # inherited across fork would share its lock with the parent.
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd


def write_lock(database: Path | None) -> WriteLock:
    """The lock for a SQLite file; ``None`` (PostgreSQL, or SQLite in memory): none."""
    if database is None:
        return NoWriteLock()
    return FileWriteLock(database.with_name(database.name + ".writer-lock"))
