"""The ``file`` key store: PEM files (mode 0600) plus a manifest, in one directory.

Layout of the keys directory::

    keyring.json     the manifest: kid, algorithm, file and lifecycle times of each key
    <kid>.pem        one PKCS #8 private key per file, readable by the owner only
    .keyring.lock    locked by whoever writes the manifest (exclusively), and by each
    .keyring.intent  batch of audit rows while it commits (shared; ``federation.keys.stops``)

The manifest is replaced atomically (write, fsync, rename), and a key file is written
before the manifest names it, so a crash never leaves the manifest naming a missing key.
A manifest or a key file it names that is unreadable, corrupt, or readable by other
users stops the issuer with a message that names the file; files it does not name are
never read.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from federation._internal.files import (
    create_private,
    private_directory,
    refuse_shared,
    replace_private,
)
from federation.errors import ConfigurationError, ResourceNotFound
from federation.keys.lifecycle import KeyRecord, changed
from federation.keys.signers import (
    LocalSigner,
    PrivateKey,
    algorithm_of,
    generate_private_key,
)

MANIFEST = "keyring.json"
LOCK = ".keyring.lock"
# A writer holds this one while it waits for the lock, so that no new reader takes the
# lock meanwhile: readers come with every batch of audit rows and would starve it.
INTENT = ".keyring.intent"
_FORMAT = 1


@dataclass(frozen=True)
class StoredKey:
    record: KeyRecord
    signer: LocalSigner


class FileKeyStore:
    """Keys in a directory on local disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.manifest = directory / MANIFEST
        # A key file never changes once written (O_EXCL): parse each one once.
        self._signers: dict[str, LocalSigner] = {}

    def version(self) -> bytes | None:
        """Changes whenever the manifest does (another process rotated or stopped a key):
        its bytes, as a time and size could stay the same over two quick writes."""
        try:
            return self.manifest.read_bytes()
        except OSError:
            return None

    def load(self) -> list[StoredKey]:
        entries = self._read_manifest()
        if not entries and any(self.directory.glob("*.pem")):
            raise ConfigurationError(
                f"{self.directory} holds key files but no {MANIFEST}; restore the manifest "
                "or move the key files away so that new keys are generated"
            )
        return [self._load_entry(entry) for entry in entries]

    def create(self, alg: str, *, created_at: datetime, activates_at: datetime) -> StoredKey:
        """Generate a key, write it, then add it to the manifest."""
        private_directory(self.directory)
        with self._lock():
            return self._create(alg, created_at, activates_at)

    def create_if(
        self,
        plan: Callable[[list[KeyRecord]], datetime | None],
        alg: str,
        *,
        created_at: datetime,
    ) -> StoredKey | None:
        """Create a key if ``plan(records)`` says when it signs: decided and created under
        one lock, so processes that decide together (to start, to rotate) create one key.

        The key is generated between two looks under the lock, not under it: an RSA key
        takes up to a few hundred milliseconds, and audit commits wait for the lock."""
        private_directory(self.directory)
        with self._lock():
            if plan(self._records()) is None:
                return None
        private_key = generate_private_key(alg)
        with self._lock():
            starts = plan(self._records())
            return None if starts is None else self._create(alg, created_at, starts, private_key)

    def update(
        self,
        kid: str,
        *,
        activates_at: datetime | None = None,
        retired_at: datetime | None = None,
        revoked_at: datetime | None = None,
    ) -> KeyRecord:
        """Set ``activates_at``, ``retired_at`` or ``revoked_at`` of one key."""
        with self._lock():
            entries = self._read_manifest()
            for index, entry in enumerate(entries):
                if entry.get("kid") == kid:
                    record = changed(self._record(entry), activates_at, retired_at, revoked_at)
                    entries[index] = {**entry, **_entry(record)}
                    self._write_manifest(entries)
                    return record
        raise ResourceNotFound(f"signing key {kid} not found")

    def stops(self, manifest: bytes | None) -> dict[str, datetime]:
        """When each key of ``manifest`` (the manifest's bytes; ``None``: none) that was
        retired or revoked stops signing: the earlier of the two times."""
        found = {}
        for entry in self._parse_manifest(manifest):
            record = self._record(entry)
            times = [t for t in (record.retired_at, record.revoked_at) if t is not None]
            if times:
                found[record.kid] = min(times)
        return found

    def _records(self) -> list[KeyRecord]:
        return [self._record(entry) for entry in self._read_manifest()]

    def _create(
        self,
        alg: str,
        created_at: datetime,
        activates_at: datetime,
        private_key: PrivateKey | None = None,
    ) -> StoredKey:
        private_key = private_key or generate_private_key(alg)
        signer = LocalSigner(private_key)
        record = KeyRecord(
            kid=signer.kid, alg=alg, created_at=created_at, activates_at=activates_at
        )
        create_private(self.directory / f"{signer.kid}.pem", _pem(private_key))
        entries = self._read_manifest()
        entries.append(_entry(record))
        self._write_manifest(entries)
        return StoredKey(record=self._record(entries[-1]), signer=signer)

    def open_lock(self, name: str = LOCK) -> int:
        """A new descriptor of the lock file ``name`` (a lock is per descriptor)."""
        try:
            return os.open(self.directory / name, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigurationError(f"cannot lock {self.directory}: {exc.strerror}") from exc

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise writers of the manifest, across processes; readers that hold the lock
        shared (audit commits) finish first, and no new one starts meanwhile."""
        intent = self.open_lock(INTENT)
        try:
            fcntl.flock(intent, fcntl.LOCK_EX)
            fd = self.open_lock()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)
        finally:
            os.close(intent)

    def _record(self, entry: dict[str, Any]) -> KeyRecord:
        try:
            return KeyRecord(
                kid=str(entry["kid"]),
                alg=str(entry["alg"]),
                created_at=_time(entry["created_at"]),
                activates_at=_time(entry["activates_at"]),
                retired_at=_optional_time(entry.get("retired_at")),
                revoked_at=_optional_time(entry.get("revoked_at")),
                location=f"file {self.directory / Path(str(entry.get('file', ''))).name}",
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{self.manifest} has an invalid key entry: {exc}") from exc

    def _load_entry(self, entry: dict[str, Any]) -> StoredKey:
        record = self._record(entry)
        name = entry.get("file")
        if not isinstance(name, str):
            raise ConfigurationError(f"{self.manifest} names no file for key {record.kid}")
        path = self.directory / Path(name).name
        signer = self._signers.get(record.kid) or LocalSigner(self._read_private_key(path))
        if signer.kid != record.kid or signer.alg != record.alg:
            raise ConfigurationError(
                f"key file {path} holds a {signer.alg} key with kid {signer.kid}, but "
                f"{self.manifest} expects {record.alg} kid {record.kid}"
            )
        self._signers[record.kid] = signer
        return StoredKey(record=record, signer=signer)

    def _read_private_key(self, path: Path) -> PrivateKey:
        try:
            refuse_shared(path, "key file")
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read key file {path}: {exc.strerror}") from exc
        try:
            key = serialization.load_pem_private_key(data, password=None)
            algorithm_of(key)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"key file {path} is not an unencrypted P-256 or RSA (>= 2048 bits) "
                "private key in PEM form"
            ) from exc
        return key  # type: ignore[return-value]

    def _read_manifest(self) -> list[dict[str, Any]]:
        try:
            data = self.manifest.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigurationError(f"cannot read {self.manifest}: {exc.strerror}") from exc
        return self._parse_manifest(data)

    def _parse_manifest(self, data: bytes | None) -> list[dict[str, Any]]:
        """The entries of the manifest's bytes (``None``: there is no manifest)."""
        if data is None:
            return []
        try:
            document = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise ConfigurationError(f"{self.manifest} is not valid JSON: {exc}") from exc
        if (
            not isinstance(document, dict)
            or document.get("format") != _FORMAT
            or not isinstance(document.get("keys"), list)
            or not all(isinstance(entry, dict) for entry in document["keys"])
        ):
            raise ConfigurationError(
                f"{self.manifest} is not a keyring manifest (format {_FORMAT})"
            )
        return list(document["keys"])

    def _write_manifest(self, entries: list[dict[str, Any]]) -> None:
        text = json.dumps({"format": _FORMAT, "keys": entries}, indent=2) + "\n"
        replace_private(self.manifest, text.encode("utf-8"))


def _pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _entry(record: KeyRecord) -> dict[str, Any]:
    return {
        "kid": record.kid,
        "alg": record.alg,
        "file": f"{record.kid}.pem",
        "created_at": record.created_at.isoformat(),
        "activates_at": record.activates_at.isoformat(),
        "retired_at": record.retired_at.isoformat() if record.retired_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


def _time(value: Any) -> datetime:
    when = datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone")
    return when


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)
