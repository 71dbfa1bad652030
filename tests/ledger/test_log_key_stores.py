"""The log's note keys in the database key store: sealed with the key-encryption key,
newest first, retired for good; and the settings that keep the aws-kms store's log key
there too."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from federation.errors import ConfigurationError, ResourceNotFound
from federation.keys.kek import KeyEncryptionKey, new_kek
from federation.keys.log_keys import DatabaseLogKeys, ensure
from federation.store import Store
from federation.store.models import LogKey
from tests.conftest import make_settings

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def test_database_log_keys_are_sealed_and_retire_for_good(store: Store) -> None:
    kek = KeyEncryptionKey.from_text(new_kek())
    keys = DatabaseLogKeys(store, kek)
    first = ensure(keys, NOW)[0]
    assert ensure(keys, NOW)[0].number == first.number  # kept, not remade
    second = keys.create(NOW)
    assert [key.number for key in keys.load()] == [second.number, first.number]
    raw = first.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    with store.session() as session:
        rows = session.scalars(select(LogKey)).all()
    assert all(raw not in bytes(row.sealed_private_key) for row in rows)

    with pytest.raises(ConfigurationError, match="does not open"):
        DatabaseLogKeys(store, KeyEncryptionKey.from_text(new_kek())).load()

    keys.retire(first.number, NOW)
    assert [key.number for key in keys.load()] == [second.number]
    with store.session() as session:
        retired = session.get(LogKey, first.number)
        assert retired is not None
        assert retired.retired_at is not None
        assert bytes(retired.sealed_private_key) == b""
    with pytest.raises(ResourceNotFound):
        keys.retire(first.number, NOW)


def test_the_aws_kms_store_keeps_the_log_key_sealed_with_a_kek(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="FEDERATION_KEK"):
        make_settings(tmp_path, key_store="aws-kms", transparency_log=True)
    monkeypatch.setenv("FEDERATION_TRANSPARENCY_LOG", "on")
    with pytest.raises(ConfigurationError, match="FEDERATION_KEK"):
        make_settings(tmp_path, key_store="aws-kms")
    monkeypatch.delenv("FEDERATION_TRANSPARENCY_LOG")
    # without a KEK, and not asked for, the log is off (an upgrade keeps serving)
    assert not make_settings(tmp_path, key_store="aws-kms").transparency_log
    assert make_settings(tmp_path, key_store="aws-kms", kek=new_kek()).transparency_log
    assert make_settings(tmp_path).transparency_log
