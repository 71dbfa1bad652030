"""The issuing pipeline over a store suite's store."""

from __future__ import annotations

from pathlib import Path

from federation.clock import ManualClock
from federation.issuing.pipeline import TokenIssuer
from federation.server.runtime import open_keyring
from federation.store import Store
from federation.store.issuing import issue_store
from tests.conftest import make_settings


def token_issuer(
    store: Store, directory: Path, database_url: str, clock: ManualClock
) -> TokenIssuer:
    """The issuing pipeline on ``store``, with fresh keys in ``directory``."""
    settings = make_settings(directory, database_url)
    keyring = open_keyring(settings, clock)
    keyring.ensure()
    return TokenIssuer.from_settings(settings, issue_store(store), keyring, clock)
