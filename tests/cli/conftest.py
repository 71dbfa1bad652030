"""Fixtures of the CLI suites: one issuer per module, and its admin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import LiveServer, LiveWorld, World, serve_issuer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One issuer for the module, at its default policy (1h, at least 1m, at most 3h);
    every test makes its own principals. Modules that need ``federation init``'s files
    override it."""
    with serve_issuer(tmp_path_factory.mktemp("issuer")) as server:
        yield server


@pytest.fixture
def admin(server: LiveServer) -> LiveWorld:
    return World.live(server)
