"""The log's witnesses: each new checkpoint is pushed to every C2SP ``tlog-witness`` in
``FEDERATION_LOG_WITNESSES``, and the cosignature each answers (checked with its key) is
added to the kept checkpoint, so that ``/log/checkpoint`` and the inclusion proofs carry
it and a verifier can require it (``federation verify --require-logged --witness KEY``).

A witness cosigns a tree only once it has checked that the tree extends every tree it
cosigned before, so a log cannot show one history to some and another to others unless
its witnesses help it. Pushing runs beside the signing, once a second, in a thread; a
witness that is away or refuses is logged and tried again, and never holds up issuing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from federation.auditor.witness_push import WitnessClient, push_checkpoint
from federation.errors import FederationError
from federation.ledger import Ledger
from federation.transparency.cosignatures import parse_witness_key
from federation.transparency.notes import NoteVerifier

log = logging.getLogger("federation.log")
PUSH_INTERVAL = 1.0  # seconds between looks for a checkpoint a witness has not cosigned


class LedgerSource:
    """The log as the push client reads it: this issuer's ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def checkpoint(self) -> str:
        return self.ledger.latest().note

    def consistency(self, old_size: int, new_size: int) -> Sequence[bytes]:
        return self.ledger.consistency(old_size, new_size)[2]


class Witness:
    """One witness: where it listens, its key, and the size it last cosigned here."""

    def __init__(self, url: str, key: str) -> None:
        self.client = WitnessClient(url)
        self.key: NoteVerifier = parse_witness_key(key)
        self.cosigned: int | None = None

    def push(self, ledger: Ledger) -> None:
        """Have the witness cosign the latest checkpoint, if it has not; keep the
        cosignature with the checkpoint."""
        if self.cosigned is not None and self.cosigned >= ledger.latest().size:
            return
        pushed = push_checkpoint(
            LedgerSource(ledger), self.client, witness_key=self.key, old_size=self.cosigned or 0
        )
        ledger.records.add_signatures(pushed.checkpoint.size, pushed.note)
        self.cosigned = pushed.checkpoint.size


async def witness_forever(
    ledger: Ledger, witnesses: Sequence[tuple[str, str]], interval: float = PUSH_INTERVAL
) -> None:
    found = [Witness(url, key) for url, key in witnesses]
    try:
        while True:
            for witness in found:
                try:
                    await asyncio.to_thread(witness.push, ledger)
                except FederationError as exc:
                    log.warning("transparency log: witness %s: %s", witness.client.url, exc.detail)
                except Exception:  # NOTE: a failed round must not end the pushing
                    log.exception("transparency log: pushing to %s failed", witness.client.url)
            await asyncio.sleep(interval)
    finally:
        for witness in found:
            witness.client.close()
