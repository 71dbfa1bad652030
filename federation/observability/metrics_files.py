"""Where a server's worker processes write their metrics, so that one scrape sums them
(prometheus_client's multiprocess mode: one small memory-mapped file per worker).

Several servers may share one home, and so one ``FEDERATION_METRICS_DIR``: each
``serve`` makes its own subdirectory ``serve-<pid>`` and holds a lock in it for as long
as it (or a worker it forked) lives. At start-up, before its workers exist, it removes
the subdirectories whose lock nobody holds: the files of servers that have stopped. A
scrape thus sums this server's workers, never another server's, and a restart begins
from zero, as Prometheus expects of counters.

The directories are 0700 and the files in them 0600: prometheus_client creates its files
with the process's umask (0644 as a rule), and each is tightened as soon as it exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import values

from federation._internal.files import private_directory
from federation.errors import ConfigurationError

PREFIX = "serve-"
LOCK = "lock"
ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own switch


@dataclass(frozen=True)
class Claimed:
    """A server's own metrics directory; locked while ``fd`` is open (in any process
    forked since), which the server leaves to its exit."""

    path: Path
    fd: int

    def release(self) -> None:
        os.close(self.fd)


def claim(parent: Path, pid: int | None = None) -> Claimed:
    """This server's own metrics directory under ``parent`` (made 0700), locked;
    the directories of stopped servers are removed first."""
    parent = Path(os.path.abspath(parent))  # workers may look from elsewhere
    private_directory(parent)
    for stale in sorted(parent.glob(f"{PREFIX}*")):
        if stale.is_dir() and not stale.is_symlink() and _unlocked(stale):
            _remove(stale)
    own = parent / f"{PREFIX}{pid if pid is not None else os.getpid()}"
    private_directory(own)
    try:
        fd = os.open(own / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigurationError(f"cannot use metrics directory {own}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise ConfigurationError(f"cannot lock metrics directory {own}: {exc.strerror}") from exc
    return Claimed(path=own, fd=fd)


def share(directory: Path) -> None:
    """Make this process write its metrics to ``directory``'s files. Process-wide, and
    before the first metric is made: a server worker calls it as it starts."""
    os.environ[ENVIRONMENT] = str(directory)
    # NOTE: prometheus_client picks its value store when it is first imported, from the
    # variable above; a worker forked from `serve` imported it before the variable was set
    if not getattr(values.ValueClass, "_private_files", False):
        multiprocess = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        values.ValueClass = _private_files(multiprocess)


def shared_directory() -> Path | None:
    """The directory ``serve`` handed its workers, if this process is one of them."""
    found = os.environ.get(ENVIRONMENT)
    return Path(found) if found else None


def _private_files(base: Any) -> Any:
    """prometheus_client's file-backed values (``base``), whose files are made 0600 when
    a value is made: a file is created with a process's first value of its kind."""
    tightened: set[Path] = set()

    class PrivateFileValue(base):  # type: ignore[misc]
        _private_files = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            directory = shared_directory()
            if directory is None:
                return
            for path in directory.glob(f"*_{os.getpid()}.db"):
                if path not in tightened and not path.is_symlink():
                    with contextlib.suppress(FileNotFoundError):  # gone: nothing to tighten
                        path.chmod(0o600)
                    tightened.add(path)

    return PrivateFileValue


def _unlocked(directory: Path) -> bool:
    try:
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # not ours to judge: leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # NOTE: closing releases the lock just taken
    return True


def _remove(directory: Path) -> None:
    """Delete the metric files and the lock of a stopped server; anything else stays."""
    for entry in directory.iterdir():
        ours = entry.suffix == ".db" or entry.name == LOCK
        if ours and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something else lives there: not ours to delete
        directory.rmdir()
