"""The transparency log's Ed25519 note keys, kept where the signing keys are.

A log key signs the log's checkpoints (``federation.transparency``); its verifier key,
which auditors pin, is published in the discovery document. Its lifecycle is short:
made when the log first needs one (``init`` or ``serve``), rotated by making a new one
(which signs beside the old one, so that auditors can move their pin while both
signatures are on every checkpoint), and retired (its private key destroyed, so that it
never signs again). The newest live key is the one the discovery document names.

- ``file`` key store: ``<keys dir>/log/ed25519-<n>.pem``, PKCS #8, mode 0600; retiring
  deletes the file.
- ``database`` and ``aws-kms`` key stores: the ``log_keys`` table, the private key sealed
  with the key-encryption key (``FEDERATION_KEK``). AWS KMS has Ed25519 keys
  (``ECC_NIST_EDWARDS25519``), but the KMS stand-in this project is tested against does
  not, so the ``aws-kms`` store keeps its log key sealed in the database too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from federation._internal.files import create_private, private_directory, refuse_shared
from federation.errors import ConfigurationError, ResourceNotFound
from federation.keys.kek import KeyEncryptionKey
from federation.settings import Settings
from federation.store import Store
from federation.store.models import LogKey
from federation.transparency.notes import Ed25519NoteSigner

_FILE = re.compile(r"ed25519-(?P<n>[0-9]{1,9})\.pem")


@dataclass(frozen=True)
class LogKeyMaterial:
    """One live log key: its number in its store (newest highest) and private key."""

    number: int
    private_key: Ed25519PrivateKey

    def signer(self, name: str) -> Ed25519NoteSigner:
        return Ed25519NoteSigner(name, self.private_key)

    def verifier_key(self, name: str) -> str:
        """The note verifier key auditors pin, for the log named ``name``."""
        return self.signer(name).verifier.verifier_key


class LogKeyStore(Protocol):
    """Where the log's note keys live."""

    def load(self) -> list[LogKeyMaterial]:
        """The live keys, newest first."""
        ...

    def create(self, now: datetime) -> LogKeyMaterial: ...

    def retire(self, number: int, now: datetime) -> None:
        """Destroy key ``number``'s private key; :class:`ResourceNotFound` when no live
        key has that number."""
        ...


def ensure(keys: LogKeyStore, now: datetime) -> list[LogKeyMaterial]:
    """The live keys, newest first, after making one if there is none."""
    found = keys.load()
    return found or [keys.create(now)]


def signers(keys: LogKeyStore, name: str, now: datetime) -> list[Ed25519NoteSigner]:
    """A note signer of each live key (made if there is none), newest first, named
    ``name`` (the log's origin)."""
    return [material.signer(name) for material in ensure(keys, now)]


class FileLogKeys:
    """Log keys as PEM files (mode 0600) in ``<keys dir>/log``."""

    def __init__(self, keys_dir: Path) -> None:
        self.directory = keys_dir / "log"

    def load(self) -> list[LogKeyMaterial]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            matched = _FILE.fullmatch(path.name)
            if matched is None:
                continue
            found.append(LogKeyMaterial(int(matched["n"]), self._read(path)))
        return sorted(found, key=lambda material: -material.number)

    def create(self, now: datetime) -> LogKeyMaterial:
        private_directory(self.directory)
        number = max((material.number for material in self.load()), default=0) + 1
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        create_private(self.directory / f"ed25519-{number}.pem", pem)
        return LogKeyMaterial(number, key)

    def retire(self, number: int, now: datetime) -> None:
        path = self.directory / f"ed25519-{number}.pem"
        if not path.is_file():
            raise ResourceNotFound(f"no live log key {number}")
        path.unlink()

    def _read(self, path: Path) -> Ed25519PrivateKey:
        refuse_shared(path, "log key")
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the log key {path}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"the log key {path} is not an Ed25519 key")
        return key


class DatabaseLogKeys:
    """Log keys in the ``log_keys`` table, sealed with the key-encryption key."""

    def __init__(self, store: Store, kek: KeyEncryptionKey) -> None:
        self._store = store
        self._kek = kek

    def load(self) -> list[LogKeyMaterial]:
        with self._store.session() as session:
            rows = session.scalars(
                select(LogKey).where(LogKey.retired_at.is_(None)).order_by(LogKey.seq.desc())
            ).all()
            return [self._open(row) for row in rows]

    def create(self, now: datetime) -> LogKeyMaterial:
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        sealed = self._kek.seal(raw, kid=_context(public))
        with self._store.session() as session:
            row = LogKey(
                name="ed25519",
                public_key=public,
                sealed_private_key=sealed,
                created_at=now,
                retired_at=None,
            )
            session.add(row)
            session.commit()
            return LogKeyMaterial(row.seq, key)

    def retire(self, number: int, now: datetime) -> None:
        with self._store.session() as session:
            done = session.execute(
                update(LogKey)
                .where(LogKey.seq == number, LogKey.retired_at.is_(None))
                .values(retired_at=now, sealed_private_key=b"")
            )
            if not getattr(done, "rowcount", 0):
                raise ResourceNotFound(f"no live log key {number}")
            session.commit()

    def _open(self, row: LogKey) -> LogKeyMaterial:
        raw = self._kek.open(row.sealed_private_key, kid=_context(row.public_key))
        return LogKeyMaterial(row.seq, Ed25519PrivateKey.from_private_bytes(raw))


def _context(public: bytes) -> str:
    """What a sealed log key is bound to: its public key."""
    return "log-ed25519-" + public.hex()


def log_key_store(settings: Settings, store: Store) -> LogKeyStore:
    """Where the configured key store keeps the log's keys."""
    if settings.key_store == "file":
        return FileLogKeys(settings.keys_dir)
    if settings.kek is None:  # NOTE: the settings refuse this while the log is on
        raise ConfigurationError("the transparency log's key needs FEDERATION_KEK")
    return DatabaseLogKeys(store, KeyEncryptionKey.from_text(settings.kek.get_secret_value()))
