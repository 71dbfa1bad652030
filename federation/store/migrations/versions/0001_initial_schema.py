"""Initial schema: principals, API keys, runs and the token audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(128), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("display_name", sa.String(256), nullable=True),
        sa.Column("teams", sa.JSON(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_principals")),
        sa.UniqueConstraint("uid", name=op.f("uq_principals_uid")),
    )
    op.create_table(
        "api_keys",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("principal_uid", sa.String(128), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("bootstrap", sa.Boolean(), nullable=False),
        sa.Column("parent_key_id", sa.String(32), nullable=True),
        _time("created_at"),
        _time("expires_at", nullable=True),
        _time("last_used_at", nullable=True),
        _time("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_uid"],
            ["principals.uid"],
            name=op.f("fk_api_keys_principal_uid_principals"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("id", name=op.f("uq_api_keys_id")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_principal_uid"), "api_keys", ["principal_uid"])
    op.create_index(op.f("ix_api_keys_parent_key_id"), "api_keys", ["parent_key_id"])
    op.create_table(
        "runs",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("principal_uid", sa.String(128), nullable=False),
        sa.Column("team_uid", sa.String(128), nullable=True),
        sa.Column("environment", sa.String(256), nullable=True),
        sa.Column("agent_name", sa.String(256), nullable=True),
        sa.Column("skill_spec", sa.String(256), nullable=True),
        sa.Column("host", sa.String(256), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("workload_token_hash", sa.String(64), nullable=False),
        sa.Column("created_by_key", sa.String(32), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["principal_uid"], ["principals.uid"], name=op.f("fk_runs_principal_uid_principals")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_runs_run_id")),
    )
    op.create_index(op.f("ix_runs_environment"), "runs", ["environment"])
    op.create_index(op.f("ix_runs_principal_uid"), "runs", ["principal_uid"])
    op.create_index(op.f("ix_runs_state"), "runs", ["state"])
    op.create_table(
        "issued_tokens",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("principal_uid", sa.String(128), nullable=False),
        sa.Column("team_uid", sa.String(128), nullable=True),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("audience", sa.String(512), nullable=False),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("kid", sa.String(128), nullable=False),
        _time("issued_at"),
        _time("expires_at"),
        sa.Column("api_key_id", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_issued_tokens")),
        sa.UniqueConstraint("jti", name=op.f("uq_issued_tokens_jti")),
    )
    op.create_index("ix_issued_tokens_run_id_seq", "issued_tokens", ["run_id", "seq"])
    op.create_index("ix_issued_tokens_principal_uid_seq", "issued_tokens", ["principal_uid", "seq"])


def downgrade() -> None:
    op.drop_table("issued_tokens")
    op.drop_table("runs")
    op.drop_table("api_keys")
    op.drop_table("principals")
