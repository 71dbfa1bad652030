"""Migration 0003 (console sessions) upgrades and downgrades on SQLite and PostgreSQL,
leaving the rest of the schema and its rows alone."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select

from federation.clock import ManualClock
from federation.registry.principals import bootstrap_admin
from federation.store import Store
from federation.store.database import MIGRATIONS
from federation.store.models import ApiKey


def _migrate(store: Store, target: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)
        connection.commit()


def _tables(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names())


def _indexes(store: Store) -> set[str]:
    return {str(index["name"]) for index in inspect(store.engine).get_indexes("console_sessions")}


def _key_ids(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(ApiKey.id)))


def test_console_sessions_upgrade_and_downgrade(database_url: str, clock: ManualClock) -> None:
    store = Store.from_url(database_url)
    try:
        _migrate(store, "0002")
        assert "console_sessions" not in _tables(store)
        with store.session() as session:
            assert bootstrap_admin(session, clock.now()) is not None
        keys = _key_ids(store)

        _migrate(store, "0003")
        assert store.revision() == "0003"
        assert "console_sessions" in _tables(store)
        assert {
            "ix_console_sessions_api_key_id",
            "ix_console_sessions_principal_uid",
            "ix_console_sessions_expires_at",
        } <= _indexes(store)

        _migrate(store, "0002", down=True)
        assert store.revision() == "0002"
        assert "console_sessions" not in _tables(store)
        assert _key_ids(store) == keys

        _migrate(store, "head")
        store.check_schema()
        assert "console_sessions" in _tables(store)
        assert _key_ids(store) == keys
    finally:
        store.dispose()
