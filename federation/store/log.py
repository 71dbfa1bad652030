"""The transparency log as the database holds it, for those who serve and sign it.

Appends happen in the audit batches (``federation.store.issuing.log_append``); this
module reads what they wrote: the head, the entries, the hashes of tiles, and the signed
checkpoints, which it also records. Every hash it answers comes from stored rows; none
is trusted by whoever checks a proof, who checks it against a signed root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from federation.errors import InternalError
from federation.store.database import Store
from federation.store.issuing.log_append import HEAD_ID, edge_hashes
from federation.store.models import IssuedToken, LogCheckpoint, LogEntryRow, LogHash, LogHead
from federation.transparency.merkle import Frontier
from federation.transparency.tiles import TILE_HEIGHT, TILE_WIDTH, EntryBundle, Tile


@dataclass(frozen=True)
class SignedCheckpoint:
    size: int
    root: bytes
    note: str
    signed_at: datetime


class LogRecords:
    """Reads (and checkpoint writes) of the log, on the store's sessions."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def head(self) -> Frontier:
        """The tree as the last committed append left it."""
        with self._store.session() as session:
            row = session.execute(
                select(LogHead.size, LogHead.edge).where(LogHead.id == HEAD_ID)
            ).one_or_none()
        if row is None:
            raise InternalError("the transparency log has no head row; run `federation init`")
        return Frontier(row.size, edge_hashes(bytes(row.edge)))

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self._store.session() as session:
            row = session.scalars(
                select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(1)
            ).one_or_none()
            return _checkpoint(row)

    def checkpoint(self, size: int) -> SignedCheckpoint | None:
        with self._store.session() as session:
            return _checkpoint(session.get(LogCheckpoint, size))

    def record_checkpoint(self, checkpoint: SignedCheckpoint) -> bool:
        """Keep a signed checkpoint; False when one of its size is kept already (another
        worker or replica signed it: the same root, the log being append-only)."""
        try:
            with self._store.session() as session:
                session.add(
                    LogCheckpoint(
                        size=checkpoint.size,
                        root=checkpoint.root,
                        note=checkpoint.note,
                        signed_at=checkpoint.signed_at,
                    )
                )
                session.commit()
        except IntegrityError:
            return False
        return True

    def add_signatures(self, size: int, note: str) -> None:
        """Add to the kept checkpoint of ``size`` the signature lines of ``note`` (the
        same checkpoint, cosigned by a witness) that it lacks."""
        with self._store.session() as session:
            row = session.scalars(
                select(LogCheckpoint).where(LogCheckpoint.size == size).with_for_update()
            ).one_or_none()
            if row is None:
                raise InternalError(f"no checkpoint of size {size} is kept")
            text, _, kept = row.note.partition("\n\n")
            added_text, _, added = note.partition("\n\n")
            if added_text != text:
                raise InternalError(f"a cosigned note of another checkpoint of size {size}")
            lines = kept.splitlines(keepends=True)
            new = [line for line in added.splitlines(keepends=True) if line not in lines]
            if new:
                row.note = text + "\n\n" + "".join([*lines, *new])
                session.commit()

    def find(self, *, jti: str | None = None, token_sha256: str | None = None) -> int | None:
        """The index of a token's entry, by its ``jti`` or its SHA-256 (hex)."""
        if jti is not None:
            statement = select(IssuedToken.log_idx).where(IssuedToken.jti == jti)
        else:
            statement = (
                select(LogEntryRow.idx)
                .where(LogEntryRow.token_sha256 == token_sha256)
                .order_by(LogEntryRow.idx)
                .limit(1)
            )
        with self._store.session() as session:
            return session.scalars(statement).one_or_none()

    def entries(self, start: int, count: int) -> list[bytes]:
        """The entries ``start`` to ``start + count - 1`` (fewer where rows are missing:
        the caller checks)."""
        with self._store.session() as session:
            rows = session.execute(
                select(LogEntryRow.entry)
                .where(LogEntryRow.idx >= start, LogEntryRow.idx < start + count)
                .order_by(LogEntryRow.idx)
            ).scalars()
            return [bytes(entry) for entry in rows]

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        """Each tile's bytes from stored hashes: a :class:`~federation.transparency.
        TileReader`. A tile whose rows are missing comes out short, which its reader
        refuses."""
        return [self._tile(tile) for tile in tiles]

    def bundle(self, bundle: EntryBundle) -> list[bytes]:
        return self.entries(bundle.start, bundle.width)

    def _tile(self, tile: Tile) -> bytes:
        start = tile.index * TILE_WIDTH
        with self._store.session() as session:
            if tile.level == 0:
                rows = session.execute(
                    select(LogEntryRow.leaf_hash)
                    .where(LogEntryRow.idx >= start, LogEntryRow.idx < start + tile.width)
                    .order_by(LogEntryRow.idx)
                ).scalars()
            else:
                rows = session.execute(
                    select(LogHash.hash)
                    .where(
                        LogHash.level == tile.level * TILE_HEIGHT,
                        LogHash.idx >= start,
                        LogHash.idx < start + tile.width,
                    )
                    .order_by(LogHash.idx)
                ).scalars()
            return b"".join(bytes(value) for value in rows)


def _checkpoint(row: LogCheckpoint | None) -> SignedCheckpoint | None:
    if row is None:
        return None
    return SignedCheckpoint(row.size, bytes(row.root), row.note, row.signed_at)
