"""The transparency log's appends, inside the audit batch's transaction.

Each batch appends the entries of the rows it inserts, in the same transaction, so the
log holds exactly the tokens whose rows are committed: entries = audit rows = tokens
returned. The batch reads the log's head (its size and right edge), locked against
every other writer (``FOR UPDATE`` on PostgreSQL, across replicas; SQLite's write lock),
gives the entries the next indexes, folds their leaf hashes onto the edge, and writes
the entries, the hashes of the tile-level subtrees they complete and the new head.
Hashing is the transparency library's (RFC 9162); nothing here is hand-written SQL.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Insert, Select, bindparam, insert, select, update

from federation.store.issuing.compiled import DirectStatement
from federation.store.issuing.port import AuditEntry
from federation.store.models import LogEntryRow, LogHash, LogHead
from federation.transparency.merkle import HASH_SIZE, Frontier, leaf_hash
from federation.transparency.tiles import TILE_HEIGHT

HEAD_ID = 1
ENTRY_COLUMNS = ("idx", "token_sha256", "leaf_hash", "entry")
HEAD_UPDATE = (
    update(LogHead)
    .where(LogHead.id == bindparam("head_id"))
    .values(size=bindparam("size"), edge=bindparam("edge"))
)


def head_query(*, lock: bool) -> Select[int, bytes]:
    """The log's size and right edge; locked for the append when ``lock``."""
    statement = select(LogHead.size, LogHead.edge).where(LogHead.id == bindparam("head_id"))
    return statement.with_for_update() if lock else statement


def entries_insert(rows: int) -> Insert:
    return insert(LogEntryRow).values(
        [{name: bindparam(f"{name}_{i}") for name in ENTRY_COLUMNS} for i in range(rows)]
    )


def hashes_insert(rows: int) -> Insert:
    return insert(LogHash).values(
        [
            {
                "level": bindparam(f"level_{i}"),
                "idx": bindparam(f"idx_{i}"),
                "hash": bindparam(f"hash_{i}"),
            }
            for i in range(rows)
        ]
    )


def edge_hashes(edge: bytes) -> list[bytes]:
    return [edge[i : i + HASH_SIZE] for i in range(0, len(edge), HASH_SIZE)]


@dataclass(frozen=True)
class Appended:
    """What one batch writes to the log: its entries' rows, the tile-level hashes they
    complete, the new head, and each token's index (by jti: its audit row's
    ``log_idx``, by which the log finds a token's entry)."""

    entries: list[dict[str, Any]]
    hashes: list[dict[str, Any]]
    size: int
    edge: bytes
    indexes: dict[str, int]


def appended(size: int, edge: bytes, entries: Sequence[AuditEntry]) -> Appended:
    """The entries of ``entries`` (those with a log entry) appended to the tree of
    ``size`` leaves whose right edge is ``edge``."""
    frontier = Frontier(size, edge_hashes(edge))
    rows: list[dict[str, Any]] = []
    hashes: list[dict[str, Any]] = []
    indexes: dict[str, int] = {}
    for entry in entries:
        logged = entry.logged
        if logged is None:
            continue
        leaf = leaf_hash(logged.entry)
        index = indexes[entry.jti] = frontier.size
        completed = frontier.append(leaf)
        rows.append(
            {
                "idx": index,
                "token_sha256": logged.token_sha256,
                "leaf_hash": leaf,
                "entry": logged.entry,
            }
        )
        # NOTE: levels 8, 16, ...: the hashes tiles above level 0 hold
        for level in range(TILE_HEIGHT, len(completed), TILE_HEIGHT):
            hashes.append(
                {"level": level, "idx": (frontier.size >> level) - 1, "hash": completed[level]}
            )
    return Appended(rows, hashes, frontier.size, b"".join(frontier.hashes), indexes)


class LogStatements:
    """The log's statements of one batch, compiled once per row count."""

    def __init__(self, dialect: Dialect, *, lock: bool) -> None:
        self.head = DirectStatement(head_query(lock=lock), dialect)
        self.update = DirectStatement(HEAD_UPDATE, dialect)
        self._entries = functools.lru_cache(maxsize=64)(
            lambda n: DirectStatement(entries_insert(n), dialect)
        )
        self._hashes = functools.lru_cache(maxsize=8)(
            lambda n: DirectStatement(hashes_insert(n), dialect)
        )

    def head_parameters(self) -> Any:
        return self.head.parameters({"head_id": HEAD_ID})

    def appended(self, head: Any, entries: Sequence[AuditEntry]) -> Appended:
        """``entries`` appended to the log whose head row (raw, as the driver answered
        it) is ``head``."""
        size, edge = self.head.row(head)
        return appended(size, bytes(edge), entries)

    def writes(self, change: Appended) -> list[tuple[str, Any]]:
        """The statements (SQL and parameters) that write ``change``; none when no entry
        is logged."""
        if not change.entries:
            return []
        writes = []
        statement: DirectStatement = self._entries(len(change.entries))
        values = {
            f"{name}_{i}": row[name]
            for i, row in enumerate(change.entries)
            for name in ENTRY_COLUMNS
        }
        writes.append((statement.sql, statement.parameters(values)))
        if change.hashes:
            statement = self._hashes(len(change.hashes))
            values = {
                f"{name}_{i}": row[name]
                for i, row in enumerate(change.hashes)
                for name in ("level", "idx", "hash")
            }
            writes.append((statement.sql, statement.parameters(values)))
        update_values = {"head_id": HEAD_ID, "size": change.size, "edge": change.edge}
        writes.append((self.update.sql, self.update.parameters(update_values)))
        return writes
