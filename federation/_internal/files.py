"""Files written whole or not at all: keys, the admin key, the database, published
documents.

A private file (keys, the admin key, the database) is created with mode 0600 in one step
(never readable by others, not even for a moment) in a directory of mode 0700. Every file
is written completely and fsynced before it takes its final name, so no reader ever sees
half of one. A failure is a :class:`ConfigurationError` naming the path, never a
traceback.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from federation.errors import ConfigurationError


def private_directory(path: Path) -> None:
    """Create ``path`` (0700), or tighten it to 0700 when it is ours and open to others."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            path.chmod(0o700)
    except OSError as exc:
        raise ConfigurationError(f"cannot use directory {path}: {exc.strerror}") from exc


def refuse_shared(path: Path, what: str) -> None:
    """A secret's file must be open to its owner alone; ``OSError`` when it is missing."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"{what} {path} is accessible to other users (mode "
            f"{stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )


def create_private(path: Path, data: bytes = b"") -> None:
    """Create ``path`` with ``data``; refuses to overwrite or to follow a symlink."""
    private_directory(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from exc


def replace_private(path: Path, data: bytes, *, own_directory: bool = True) -> None:
    """Write ``data`` to a new private file, then rename it over ``path``. The directory
    is made 0700, or tightened to 0700 unless ``own_directory`` is false (a directory
    the file only lives in, such as a home)."""
    if own_directory:
        private_directory(path.parent)
    else:
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot use directory {path.parent}: {exc.strerror}") from exc
    _replace(path, data, 0o600)


def replace_public(path: Path, data: bytes) -> None:
    """Write ``data`` to a new world-readable file, then rename it over ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot use directory {path.parent}: {exc.strerror}") from exc
    _replace(path, data, 0o644)


def _replace(path: Path, data: bytes, mode: int) -> None:
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from exc
