"""The witness's memory: the latest checkpoint it cosigned per log, in a JSON file
replaced whole (0600) before each answer, and locked, so that one witness process at a
time uses it. Losing or rolling it back would let the witness cosign a fork of what it
forgot: it is read strictly, and anything unexpected stops start-up.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation._internal import files
from federation.errors import ConfigurationError
from federation.transparency.merkle import HASH_SIZE

_STATE_VERSION = 1


@dataclass(frozen=True)
class Recorded:
    """The latest checkpoint a witness cosigned for one log, as it serves it: the log's
    signatures and the witness's own."""

    size: int
    root: bytes
    note: str


class WitnessState:
    """The latest cosigned checkpoint per origin, in a JSON file replaced whole (0600)
    at each change. One witness at a time uses a state file: :meth:`open` locks it."""

    def __init__(self, path: Path, records: dict[str, Recorded], lock: int | None) -> None:
        self.path = path
        self._records = records
        self._lock = lock

    @classmethod
    def open(cls, path: Path) -> WitnessState:
        """The state in ``path`` (none yet: an empty one, written now, so that an
        unwritable path stops start-up); :class:`ConfigurationError` when it is
        unreadable, not a witness's state, or in use by another witness."""
        lock = _lock(path)
        try:
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                state = cls(path, {}, lock)
                state._write()
                return state
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot read the witness state {path}: {exc}") from None
            return cls(path, _records(document, path), lock)
        except BaseException:
            os.close(lock)
            raise

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def get(self, origin: str) -> Recorded | None:
        return self._records.get(origin)

    def origins(self) -> list[str]:
        return sorted(self._records)

    def put(self, origin: str, record: Recorded) -> None:
        """Records ``record`` for ``origin``, on disk before it returns."""
        records = {**self._records, origin: record}
        self._write(records)
        self._records = records

    def _write(self, records: dict[str, Recorded] | None = None) -> None:
        logs = {
            origin: {
                "size": r.size,
                "root": base64.b64encode(r.root).decode("ascii"),
                "checkpoint": r.note,
            }
            for origin, r in sorted((records if records is not None else self._records).items())
        }
        document = {"version": _STATE_VERSION, "logs": logs}
        data = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        files.replace_private(self.path, data, own_directory=False)


def _lock(path: Path) -> int:
    """An exclusive lock on ``path``'s lock file, held while the witness runs."""
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigurationError(f"cannot use {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigurationError(f"another witness uses the state {path}") from None
    return fd


def _records(document: Any, path: Path) -> dict[str, Recorded]:
    try:
        if document["version"] != _STATE_VERSION:
            raise ValueError(f"version {document['version']!r}")
        records = {}
        for origin, entry in document["logs"].items():
            root = base64.b64decode(entry["root"], validate=True)
            size, note = entry["size"], entry["checkpoint"]
            if not isinstance(size, int) or size < 0 or len(root) != HASH_SIZE:
                raise ValueError(f"the record of {origin}")
            if not isinstance(note, str):
                raise ValueError(f"the checkpoint of {origin}")
            records[str(origin)] = Recorded(size, root, note)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ConfigurationError(f"{path} is not a witness state ({exc})") from None
    return records
