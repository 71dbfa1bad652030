"""Key stores in the database, shared by every replica of the issuer.

The database keeps each key's lifecycle and public key; a :class:`Material` backend keeps
what signs: ``sealed`` private keys encrypted with the key-encryption key (the
``database`` store), or keys held by AWS KMS (the ``aws-kms`` store), which the service
never sees. Creating and changing keys happens under a lock every replica honours (a
PostgreSQL advisory lock; SQLite's write lock), so that replicas that decide together,
say to rotate, act once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from federation.errors import ResourceNotFound
from federation.keys.lifecycle import KeyRecord, changed
from federation.keys.signers import Signer
from federation.store import Store
from federation.store.models import SigningKey

# pg_advisory_xact_lock takes a 64-bit key; this one is "federation keyring".
_ADVISORY_LOCK = 0x6665645F6B657973


@dataclass(frozen=True)
class NewKey:
    """What a backend made: the signer, and what the database keeps of it."""

    signer: Signer
    public_key: bytes
    sealed_private_key: bytes | None = None
    kms_key_id: str | None = None


class Material(Protocol):
    """Where the private half of database-kept keys lives."""

    @property
    def backend(self) -> str:
        """The ``backend`` column of this material's keys."""
        ...

    def generate(self, alg: str) -> NewKey: ...

    def open(self, row: SigningKey) -> Signer: ...

    def location(self, row: SigningKey) -> str: ...

    def discard(self, new: NewKey) -> None:
        """Undo :meth:`generate` when the key could not be stored (best effort)."""
        ...


@dataclass(frozen=True)
class StoredKey:
    record: KeyRecord
    signer: Signer


class DatabaseKeyStore:
    """Signing keys in the ``signing_keys`` table, their private halves in ``material``."""

    def __init__(self, store: Store, material: Material) -> None:
        self.store = store
        self.material = material
        # A key's private half never changes: open (decrypt, parse) each one once.
        self._signers: dict[str, Signer] = {}

    def version(self) -> Hashable | None:
        """Every key's times: exact, where maxima are not (a key revoked by a replica
        whose clock runs behind, or a ``next`` key made to sign early, may move no
        maximum). A few rows of four small columns."""
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(
                    SigningKey.kid,
                    SigningKey.activates_at,
                    SigningKey.retired_at,
                    SigningKey.revoked_at,
                )
                .where(SigningKey.backend == self.material.backend)
                .order_by(SigningKey.seq)
            ).all()
        return tuple(tuple(row) for row in rows)

    def load(self) -> list[StoredKey]:
        with self.store.session() as session:
            rows = self._rows(session)
            return [StoredKey(record=self._record(row), signer=self._signer(row)) for row in rows]

    def _signer(self, row: SigningKey) -> Signer:
        signer = self._signers.get(row.kid)
        if signer is None:
            signer = self._signers[row.kid] = self.material.open(row)
        return signer

    def create(self, alg: str, *, created_at: datetime, activates_at: datetime) -> StoredKey:
        created = self.create_if(lambda _: activates_at, alg, created_at=created_at)
        assert created is not None
        return created

    def create_if(
        self,
        plan: Callable[[list[KeyRecord]], datetime | None],
        alg: str,
        *,
        created_at: datetime,
    ) -> StoredKey | None:
        with self.store.session() as session:
            self._lock(session)
            activates_at = plan([self._record(row) for row in self._rows(session)])
            if activates_at is None:
                return None
            made = self.material.generate(alg)
            row = SigningKey(
                kid=made.signer.kid,
                alg=alg,
                backend=self.material.backend,
                public_key=made.public_key,
                sealed_private_key=made.sealed_private_key,
                kms_key_id=made.kms_key_id,
                created_at=created_at,
                activates_at=activates_at,
            )
            try:
                session.add(row)
                session.commit()
            except BaseException:
                self.material.discard(made)  # NOTE: no KMS key without its row
                raise
            return StoredKey(record=self._record(row), signer=made.signer)

    def update(
        self,
        kid: str,
        *,
        activates_at: datetime | None = None,
        retired_at: datetime | None = None,
        revoked_at: datetime | None = None,
    ) -> KeyRecord:
        """Set ``activates_at``, ``retired_at`` or ``revoked_at`` of one key."""
        with self.store.session() as session:
            self._lock(session)
            row = session.scalar(
                select(SigningKey).where(
                    SigningKey.kid == kid, SigningKey.backend == self.material.backend
                )
            )
            if row is None:
                raise ResourceNotFound(f"signing key {kid} not found")
            record = changed(self._record(row), activates_at, retired_at, revoked_at)
            row.activates_at = record.activates_at
            row.retired_at = record.retired_at
            row.revoked_at = record.revoked_at
            return record

    def _rows(self, session: Session) -> list[SigningKey]:
        return list(
            session.scalars(
                select(SigningKey)
                .where(SigningKey.backend == self.material.backend)
                .order_by(SigningKey.seq)
            )
        )

    def _record(self, row: SigningKey) -> KeyRecord:
        return KeyRecord(
            kid=row.kid,
            alg=row.alg,
            created_at=row.created_at,
            activates_at=row.activates_at,
            retired_at=row.retired_at,
            revoked_at=row.revoked_at,
            location=self.material.location(row),
        )

    def _lock(self, session: Session) -> None:
        """Serialise writers of the keyring across processes, to the end of the transaction."""
        if self.store.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        else:
            # SQLite: a write, even one that changes nothing, takes the database's write lock.
            session.execute(delete(SigningKey).where(text("0 = 1")))
