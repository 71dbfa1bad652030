"""The file key store: private PEM files, the manifest, and what it refuses to load."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from federation.clock import ManualClock
from federation.errors import ConfigurationError
from federation.keys import FileKeyStore, Keyring
from federation.keys.signers import generate_private_key

WINDOW = timedelta(hours=4)
LEAD = timedelta(hours=1)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def manifest(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((directory / "keyring.json").read_text())
    return document


def ready_directory(tmp_path: Path, clock: ManualClock) -> tuple[Path, Path]:
    """A keys directory with its two first keys, and the ES256 key's file."""
    directory = tmp_path / "keys"
    Keyring(FileKeyStore(directory), clock, verification_window=WINDOW, lead_time=LEAD).ensure()
    entry = next(e for e in manifest(directory)["keys"] if e["alg"] == "ES256")
    return directory, directory / entry["file"]


def test_files_are_private_and_manifest_describes_them(tmp_path: Path, clock: ManualClock) -> None:
    directory = tmp_path / "keys"
    store = FileKeyStore(directory)
    created = store.create("ES256", created_at=clock.now(), activates_at=clock.now() + LEAD)
    pem = directory / f"{created.record.kid}.pem"
    assert mode(directory) == 0o700
    assert mode(pem) == 0o600
    assert mode(directory / "keyring.json") == 0o600
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    document = manifest(directory)
    assert document["format"] == 1
    [entry] = document["keys"]
    assert entry["kid"] == created.record.kid
    assert entry["alg"] == "ES256"
    assert entry["file"] == pem.name
    assert datetime.fromisoformat(entry["activates_at"]) == clock.now() + LEAD
    assert entry["revoked_at"] is None

    [loaded] = store.load()
    assert loaded.record == created.record
    assert loaded.signer.kid == created.signer.kid


def test_empty_directory_loads_nothing(tmp_path: Path) -> None:
    assert FileKeyStore(tmp_path / "absent").load() == []
    assert FileKeyStore(tmp_path / "absent").version() is None


def refusal(directory: Path) -> str:
    with pytest.raises(ConfigurationError) as raised:
        FileKeyStore(directory).load()
    assert raised.value.detail is not None
    return raised.value.detail


def test_corrupt_pem_is_refused_naming_the_file(tmp_path: Path, clock: ManualClock) -> None:
    directory, pem = ready_directory(tmp_path, clock)
    pem.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    assert mode(pem) == 0o600
    assert str(pem) in refusal(directory)


def test_missing_key_file_is_refused_naming_it(tmp_path: Path, clock: ManualClock) -> None:
    directory, pem = ready_directory(tmp_path, clock)
    pem.unlink()
    assert str(pem) in refusal(directory)


def test_unreadable_key_file_is_refused_naming_it(tmp_path: Path, clock: ManualClock) -> None:
    directory, pem = ready_directory(tmp_path, clock)
    pem.unlink()
    pem.mkdir(mode=0o700)  # exists, owner-only, but cannot be read as a file
    assert str(pem) in refusal(directory)


@pytest.mark.parametrize("bad_mode", [0o640, 0o604, 0o660, 0o610])
def test_key_file_accessible_to_others_is_refused(
    tmp_path: Path, clock: ManualClock, bad_mode: int
) -> None:
    directory, pem = ready_directory(tmp_path, clock)
    os.chmod(pem, bad_mode)
    message = refusal(directory)
    assert str(pem) in message
    assert "chmod 600" in message


def test_key_file_with_another_key_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    directory, pem = ready_directory(tmp_path, clock)
    other = generate_private_key("ES256").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem.write_bytes(other)
    message = refusal(directory)
    assert str(pem) in message
    assert "kid" in message


def test_key_file_of_the_wrong_algorithm_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    directory, pem = ready_directory(tmp_path, clock)
    other = generate_private_key("RS256").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem.write_bytes(other)
    assert str(pem) in refusal(directory)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"format": 2, "keys": []}',
        '{"format": 1, "keys": {}}',
        '{"format": 1, "keys": [1]}',
    ],
)
def test_corrupt_manifest_is_refused_naming_it(
    tmp_path: Path, clock: ManualClock, content: str
) -> None:
    directory, _ = ready_directory(tmp_path, clock)
    (directory / "keyring.json").write_text(content)
    assert str(directory / "keyring.json") in refusal(directory)


@pytest.mark.parametrize(
    ("field", "value"),
    [("created_at", None), ("activates_at", "2026-11-28T12:00:00"), ("kid", ...)],
)
def test_invalid_manifest_entry_is_refused_naming_the_manifest(
    tmp_path: Path, clock: ManualClock, field: str, value: object
) -> None:
    directory, _ = ready_directory(tmp_path, clock)
    document = manifest(directory)
    if value is ...:
        del document["keys"][0][field]
    else:
        document["keys"][0][field] = value
    (directory / "keyring.json").write_text(json.dumps(document))
    assert str(directory / "keyring.json") in refusal(directory)


def test_key_files_without_manifest_are_refused(tmp_path: Path, clock: ManualClock) -> None:
    directory, _ = ready_directory(tmp_path, clock)
    (directory / "keyring.json").unlink()
    message = refusal(directory)
    assert str(directory) in message
    assert "keyring.json" in message
