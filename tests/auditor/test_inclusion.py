"""A token's inclusion, checked with pinned keys: the log's signature on the checkpoint,
the witnesses' cosignatures, the entry naming this token and recording its claims, and
the proof putting it in the signed tree; a token not logged yet is waited for."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.auditor.inclusion import check_claims, check_inclusion, parse_witness, prove
from federation.auditor.remote import InclusionAnswer
from federation.clock import ManualClock
from federation.errors import InvalidRequest, LogVerificationFailed, ResourceNotFound
from federation.transparency import (
    Checkpoint,
    LogEntry,
    MemoryHashes,
    inclusion_proof,
    leaf_hash,
    sign_checkpoint,
    sign_note,
    tree_hash,
)
from federation.transparency.cosignatures import Ed25519CosignatureSigner
from tests.auditor.logs import KEY
from tests.transparency.logs import ORIGIN, log_key, sample_entry

SIZE, INDEX = 21, 13
ENTRIES = [sample_entry(i).encode() for i in range(SIZE)]
TOKEN = "header.payload-13.signature"  # sample_entry(13) records this token's digest
HASHES = MemoryHashes(leaf_hash(entry) for entry in ENTRIES)
HEAD = Checkpoint(ORIGIN, SIZE, tree_hash(SIZE, HASHES))


def witness(name: str, seed: str) -> Ed25519CosignatureSigner:
    secret = hashlib.sha256(seed.encode()).digest()
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    return Ed25519CosignatureSigner(name, Ed25519PrivateKey.from_private_bytes(secret), clock)


WITNESS = witness("witness.example.test/w1", "w1")
OTHER_WITNESS = witness("witness.example.test/w2", "w2")


def answer(**changes: object) -> InclusionAnswer:
    honest = InclusionAnswer(
        index=INDEX,
        tree_size=SIZE,
        entry=ENTRIES[INDEX],
        proof=tuple(inclusion_proof(INDEX, SIZE, HASHES)),
        checkpoint=sign_checkpoint(HEAD, KEY),
    )
    return replace(honest, **changes)  # type: ignore[arg-type]


def test_an_honest_answer_verifies() -> None:
    logged = check_inclusion(answer(), KEY.verifier, token=TOKEN)

    assert (logged.index, logged.head) == (INDEX, HEAD)
    assert logged.entry == LogEntry.decode(ENTRIES[INDEX])
    assert check_inclusion(answer(), KEY.verifier, jti=logged.entry.jti).index == INDEX


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"checkpoint": sign_checkpoint(HEAD, log_key(seed="x"))},
            "does not verify with the pinned",
        ),
        ({"tree_size": SIZE - 1}, "a tree of 20 entries, its checkpoint of 21"),
        ({"entry": ENTRIES[INDEX + 1]}, "entry 13 is of another token"),
        ({"index": INDEX + 1}, "leaf 14 is not in the tree"),
        ({"proof": tuple(inclusion_proof(INDEX, SIZE, HASHES))[:-1]}, "leaf 13 is not in the tree"),
        ({"entry": ENTRIES[INDEX].replace(b'"', b' "', 1)}, "not a log entry"),
    ],
)
def test_each_lie_is_caught(changes: dict[str, object], message: str) -> None:
    with pytest.raises(LogVerificationFailed, match=message):
        check_inclusion(answer(**changes), KEY.verifier, token=TOKEN)


def test_the_entry_of_another_jti_is_caught() -> None:
    with pytest.raises(LogVerificationFailed, match="is of the token"):
        check_inclusion(answer(), KEY.verifier, jti="another-jti")


def test_a_tree_size_the_log_signed_no_checkpoint_for_is_not_found() -> None:
    with pytest.raises(ResourceNotFound, match="signed no checkpoint of 21 entries"):
        check_inclusion(answer(checkpoint=None), KEY.verifier, token=TOKEN)


def test_a_witness_cosignature_is_required_when_asked_for() -> None:
    log_signed = sign_checkpoint(HEAD, KEY)
    cosigned = sign_checkpoint(HEAD, KEY, WITNESS)
    pinned = parse_witness(WITNESS.verifier.verifier_key)

    logged = check_inclusion(answer(checkpoint=cosigned), KEY.verifier, witnesses=[pinned])

    assert logged.witnesses == (WITNESS.name,)
    for checkpoint in (log_signed, sign_checkpoint(HEAD, KEY, OTHER_WITNESS)):
        with pytest.raises(LogVerificationFailed, match="no valid cosignature of the witness"):
            check_inclusion(answer(checkpoint=checkpoint), KEY.verifier, witnesses=[pinned])


def test_a_witness_alone_does_not_make_a_checkpoint_the_logs() -> None:
    cosigned_only = sign_note(HEAD.text, WITNESS)
    pinned = parse_witness(WITNESS.verifier.verifier_key)

    with pytest.raises(LogVerificationFailed, match="pinned log key"):
        check_inclusion(answer(checkpoint=cosigned_only), KEY.verifier, witnesses=[pinned])


def test_a_log_key_is_not_a_witness_key() -> None:
    with pytest.raises(InvalidRequest):
        parse_witness(KEY.verifier.verifier_key)


CLAIMS = {
    "iss": "https://issuer.example.test",
    "sub": sample_entry(INDEX).sub,
    "aud": [sample_entry(INDEX).aud],
    "jti": sample_entry(INDEX).jti,
    "iat": sample_entry(INDEX).iat,
    "exp": sample_entry(INDEX).exp,
}
HEADER = {"kid": sample_entry(INDEX).kid, "alg": sample_entry(INDEX).alg}


def test_the_entry_must_record_what_the_token_carries() -> None:
    entry = LogEntry.decode(ENTRIES[INDEX])
    check_claims(entry, HEADER, CLAIMS)

    with pytest.raises(LogVerificationFailed, match="records sub 'other' for this token"):
        check_claims(replace(entry, sub="other"), HEADER, CLAIMS)
    with pytest.raises(LogVerificationFailed, match="records kid"):
        check_claims(entry, {**HEADER, "kid": "key-9"}, CLAIMS)
    with pytest.raises(LogVerificationFailed, match="records exp"):
        check_claims(entry, HEADER, {**CLAIMS, "exp": CLAIMS["exp"] + 1})  # type: ignore[operator]


class NotYet:
    """Answers 404 ``misses`` times, then the honest answer."""

    def __init__(self, misses: int) -> None:
        self.misses = misses
        self.asked = 0

    def inclusion(
        self, *, jti: str | None = None, token_sha256: str | None = None, size: int | None = None
    ) -> InclusionAnswer:
        self.asked += 1
        if self.asked <= self.misses:
            raise ResourceNotFound("not in the log yet")
        return answer()


class Time:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_token_just_issued_is_waited_for_up_to_the_deadline() -> None:
    time = Time()
    source = NotYet(misses=3)

    logged = prove(
        source, KEY.verifier, token=TOKEN, wait=2, sleep=time.sleep, monotonic=lambda: time.now
    )

    assert logged.index == INDEX
    assert source.asked == 4
    assert time.now == pytest.approx(0.75)


def test_a_token_never_logged_fails_at_the_deadline() -> None:
    time = Time()
    source = NotYet(misses=1000)

    with pytest.raises(ResourceNotFound, match="does not include this token"):
        prove(
            source, KEY.verifier, token=TOKEN, wait=2, sleep=time.sleep, monotonic=lambda: time.now
        )

    assert time.now == 2
    assert source.asked == 9  # at 0, 0.25, ... 2 seconds
    once = NotYet(misses=1)
    with pytest.raises(ResourceNotFound):
        prove(once, KEY.verifier, token=TOKEN)  # no wait: one ask
    assert once.asked == 1
