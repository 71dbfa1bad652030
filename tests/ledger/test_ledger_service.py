"""The ledger's edges: replicas that sign the same size, a log without its head row, a
cosigned note of another checkpoint, and the background loops that must outlive a
failed round (signing with the database away, pushing to a witness that is away)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete

from federation.api.witnessing import witness_forever
from federation.clock import ManualClock
from federation.errors import InternalError
from federation.keys.log_keys import FileLogKeys
from federation.ledger import Ledger, sign_forever
from federation.settings import Settings
from federation.store import Store
from federation.store.log import LogRecords
from federation.store.models import LogHead
from federation.transparency.cosignatures import Ed25519CosignatureSigner

NOW = datetime(2026, 12, 3, tzinfo=UTC)
ORIGIN = "issuer.example.com/log"


def ledger(store: Store, settings: Settings) -> Ledger:
    return Ledger(LogRecords(store), FileLogKeys(settings.keys_dir), ORIGIN, ManualClock(NOW))


def test_two_replicas_signing_one_size_serve_the_first_kept(
    store: Store, settings: Settings
) -> None:
    first, second = ledger(store, settings), ledger(store, settings)
    signed = first.sign()
    # the second replica's record of the same size is refused; it answers the kept one
    assert second.records.record_checkpoint(signed) is False
    assert second.sign().note == signed.note
    assert second.latest().note == signed.note


def test_a_log_without_its_head_row_says_to_run_init(store: Store, settings: Settings) -> None:
    with store.session() as session:
        session.execute(delete(LogHead))
        session.commit()
    with pytest.raises(InternalError, match="federation init"):
        ledger(store, settings).sign()


def test_a_cosigned_note_of_another_checkpoint_is_not_kept(
    store: Store, settings: Settings
) -> None:
    signed = ledger(store, settings).sign()
    other = signed.note.replace("\n0\n", "\n1\n", 1)
    with pytest.raises(InternalError, match="another checkpoint"):
        LogRecords(store).add_signatures(signed.size, other)
    with pytest.raises(InternalError, match="no checkpoint of size 7"):
        LogRecords(store).add_signatures(7, signed.note)
    LogRecords(store).add_signatures(signed.size, signed.note)  # nothing new: unchanged
    kept = LogRecords(store).checkpoint(signed.size)
    assert kept is not None
    assert kept.note == signed.note


def test_the_signing_loop_outlives_a_failed_round(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with store.session() as session:
        session.execute(delete(LogHead))
        session.commit()

    loop = sign_forever(ledger(store, settings), interval=0.01)
    with caplog.at_level(logging.ERROR, logger="federation.log"):
        asyncio.run(two_rounds(loop, caplog, "signing a checkpoint failed"))


def test_pushing_to_a_witness_that_is_away_is_a_warning_and_goes_on(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    witness = Ed25519CosignatureSigner(
        "witness.example.test/w1", Ed25519PrivateKey.generate(), ManualClock(NOW)
    )
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback

    loop = witness_forever(
        ledger(store, settings), [(closed, witness.verifier.verifier_key)], interval=0.01
    )
    with caplog.at_level(logging.WARNING, logger="federation.log"):
        asyncio.run(two_rounds(loop, caplog, "cannot reach the witness"))


async def two_rounds(
    loop: Coroutine[Any, Any, None], caplog: pytest.LogCaptureFixture, said: str
) -> None:
    """Run a background loop until it has logged ``said`` for two failed rounds (it went
    on after the first), then stop it."""
    task = asyncio.create_task(loop)
    deadline = asyncio.get_running_loop().time() + 20
    while caplog.text.count(said) < 2:
        assert not task.done()
        assert asyncio.get_running_loop().time() < deadline, f"no two rounds saying {said!r}"
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
