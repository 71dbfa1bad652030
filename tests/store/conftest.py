"""Migrated stores for the store suites: ``db`` on SQLite and PostgreSQL, ``pg`` on
PostgreSQL only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from federation.store import Store


def _migrated(url: str) -> Iterator[Store]:
    store = Store.from_url(url)
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Store]:
    yield from _migrated(database_url)


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Store]:
    yield from _migrated(postgres_url)
