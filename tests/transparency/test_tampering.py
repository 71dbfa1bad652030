"""Tampering is caught. Whoever holds the log's database and key rewrites an entry,
deletes one, swaps two, or forks the head; each time the checks a monitor or a token's
holder run (consistency with a checkpoint seen before, the entries against the next
checkpoint, the inclusion of a token's entry) report it, even though every checkpoint
involved carries a valid signature of the log's key."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from federation.errors import LogVerificationFailed
from federation.transparency import (
    Checkpoint,
    MemoryHashes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    open_checkpoint,
    sign_checkpoint,
    tree_hash,
)
from tests.transparency.logs import (
    ORIGIN,
    TOKEN,
    delete,
    log_key,
    rewrite,
    sample_entries,
    swap,
)

KEY = log_key()
SEEN = 40  # the size of the checkpoint a monitor saw before the tampering
TAMPERING: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "an entry rewritten": rewrite,
    "an entry deleted": delete,
    "two entries swapped": swap,
}


class Log:
    """A log's entries and the signed checkpoints its key makes of them."""

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries
        self.hashes = MemoryHashes(leaf_hash(entry) for entry in entries)

    def checkpoint(self, size: int) -> Checkpoint:
        message = sign_checkpoint(Checkpoint(ORIGIN, size, tree_hash(size, self.hashes)), KEY)
        return open_checkpoint(message, [KEY.verifier], origin=ORIGIN)  # it verifies


@pytest.fixture
def honest() -> Log:
    return Log(sample_entries(64))


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_the_head_after_tampering_does_not_extend_the_one_seen_before(
    honest: Log, tamper: Callable[[list[bytes]], list[bytes]]
) -> None:
    seen = honest.checkpoint(SEEN)
    honest.checkpoint(64).verify_extends(seen, consistency_proof(SEEN, 64, honest.hashes))

    forged = Log(tamper(honest.entries))
    head = forged.checkpoint(64)
    proof = consistency_proof(SEEN, 64, forged.hashes)  # the best proof the log can make
    with pytest.raises(LogVerificationFailed, match="does not extend the tree of 40"):
        head.verify_extends(seen, proof)


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_a_monitor_reading_the_new_entries_finds_they_make_another_tree(
    honest: Log, tamper: Callable[[list[bytes]], list[bytes]]
) -> None:
    seen = honest.checkpoint(SEEN)
    edge = seen.verify_entries(honest.entries[:SEEN])
    honest.checkpoint(64).verify_entries(honest.entries[SEEN:], start=edge)

    forged = Log(tamper(honest.entries))
    with pytest.raises(LogVerificationFailed, match="do not hash to the root"):
        forged.checkpoint(64).verify_entries(forged.entries[SEEN:], start=edge)


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_the_entries_no_longer_make_the_signed_head(
    honest: Log, tamper: Callable[[list[bytes]], list[bytes]]
) -> None:
    # The database rows changed, the head signed before did not.
    head = honest.checkpoint(64)
    head.verify_entries(honest.entries)
    with pytest.raises(LogVerificationFailed, match="do not hash to the root"):
        head.verify_entries(tamper(honest.entries))


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_a_tokens_entry_is_no_longer_where_its_proof_says(
    honest: Log, tamper: Callable[[list[bytes]], list[bytes]]
) -> None:
    token_leaf = leaf_hash(honest.entries[TOKEN])
    honest.checkpoint(64).verify_inclusion(
        token_leaf, TOKEN, inclusion_proof(TOKEN, 64, honest.hashes)
    )

    forged = Log(tamper(honest.entries))
    head = forged.checkpoint(64)
    with pytest.raises(LogVerificationFailed, match=f"leaf {TOKEN} is not in the tree"):
        head.verify_inclusion(token_leaf, TOKEN, inclusion_proof(TOKEN, 64, forged.hashes))


def test_a_forked_head_is_caught(honest: Log) -> None:
    # The key signs two heads of the same size over different entries: one shown to
    # the public, one to a victim. Whoever sees both (a monitor, a witness) finds out.
    public = honest.checkpoint(64)
    fork = Log(rewrite(honest.entries)).checkpoint(64)
    assert (fork.size, fork.origin) == (public.size, public.origin)
    with pytest.raises(LogVerificationFailed, match="two trees of 64 leaves: the log forked"):
        fork.verify_extends(public, [])
    with pytest.raises(LogVerificationFailed, match="the log forked"):
        public.verify_extends(fork, [])
    # And a head that shrinks is a rewrite, whatever proof comes with it.
    with pytest.raises(LogVerificationFailed, match="went back from 64 entries to 63"):
        Log(honest.entries[:63]).checkpoint(63).verify_extends(public, [])
