"""Tables. Secrets are stored only as SHA-256 hashes; tokens are never stored at all.

Every table has an integer ``seq``: lists are newest first, and their cursors are
positions in ``seq`` (keyset pagination, stable under concurrent inserts).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SeqType = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Principal(Base):
    __tablename__ = "principals"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(256))
    teams: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    __tablename__ = "api_keys"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))
    principal_uid: Mapped[str] = mapped_column(ForeignKey("principals.uid"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    bootstrap: Mapped[bool] = mapped_column(Boolean, default=False)
    # The key that created this one without `admin`: deleting it deletes this one too.
    parent_key_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Run(Base):
    __tablename__ = "runs"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    principal_uid: Mapped[str] = mapped_column(ForeignKey("principals.uid"), index=True)
    team_uid: Mapped[str | None] = mapped_column(String(128))
    environment: Mapped[str | None] = mapped_column(String(256), index=True)
    agent_name: Mapped[str | None] = mapped_column(String(256))
    skill_spec: Mapped[str | None] = mapped_column(String(256))
    host: Mapped[str | None] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16), index=True)
    workload_token_hash: Mapped[str] = mapped_column(String(64))
    created_by_key: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IssuedToken(Base):
    """The audit row of one issued token: who, for what, until when; never the token."""

    __tablename__ = "issued_tokens"
    __table_args__ = (
        Index("ix_issued_tokens_run_id_seq", "run_id", "seq"),
        Index("ix_issued_tokens_principal_uid_seq", "principal_uid", "seq"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    run_id: Mapped[str] = mapped_column(String(64))
    principal_uid: Mapped[str] = mapped_column(String(128))
    team_uid: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(512))
    audience: Mapped[str] = mapped_column(String(512))
    alg: Mapped[str] = mapped_column(String(16))
    kid: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    api_key_id: Mapped[str] = mapped_column(String(32))
    trace_id: Mapped[str | None] = mapped_column(String(64))
    # the index of the token's transparency log entry (None: logged with the log off)
    log_idx: Mapped[int | None] = mapped_column(BigInteger)


class SigningKey(Base):
    """A signing key kept in the database (the ``database`` and ``aws-kms`` key stores):
    its lifecycle times, its public key, and either its private key sealed with the
    key-encryption key or the id of the KMS key that holds it."""

    __tablename__ = "signing_keys"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    kid: Mapped[str] = mapped_column(String(128), unique=True)
    alg: Mapped[str] = mapped_column(String(16))
    backend: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    kms_key_id: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activates_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConsoleSession(Base):
    """A console sign-in, so that it can be ended before its cookie is gone: the hash of
    the random id the cookie carries (never the id), the API key it signed in with, when
    it ends by itself and when it was ended (signed out)."""

    __tablename__ = "console_sessions"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[str] = mapped_column(String(32), index=True)
    principal_uid: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LogHead(Base):
    """The transparency log's head: one row (``id`` 1), the tree's size and its right
    edge (the hashes of its largest complete subtrees, concatenated, left to right:
    ``federation.transparency.Frontier``). Every append locks it, so entries get
    consecutive indexes across replicas, one batch at a time."""

    __tablename__ = "log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    edge: Mapped[bytes] = mapped_column(LargeBinary)


class LogEntryRow(Base):
    """One entry of the transparency log: its index, its canonical bytes and leaf hash,
    and the SHA-256 of the token it records, by which it is found (by ``jti`` through
    the token's audit row, whose ``log_idx`` is this index)."""

    __tablename__ = "log_entries"

    idx: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    token_sha256: Mapped[str] = mapped_column(String(64), index=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    entry: Mapped[bytes] = mapped_column(LargeBinary)


class LogHash(Base):
    """The hash of a complete subtree at a tile level (8, 16, ...: the hashes of the
    tiles above level 0, whose hashes are the entries' leaf hashes)."""

    __tablename__ = "log_hashes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class LogCheckpoint(Base):
    """A signed checkpoint of the log: its size, root and signed note."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(String(8192))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LogKey(Base):
    """The log's Ed25519 note key, kept in the database (the ``database`` and ``aws-kms``
    key stores): its name, public key and private key sealed with the key-encryption key.
    The newest live row signs."""

    __tablename__ = "log_keys"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
