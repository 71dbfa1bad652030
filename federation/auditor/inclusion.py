"""A token's place in the log: checking, with keys the reader pinned, that the log
includes it (``federation log prove``, ``federation verify --require-logged``).

The issuer answers with the token's entry, its index, an inclusion proof and the signed
checkpoint the proof is against. None of it is taken on trust:

- the checkpoint must carry a valid signature of the pinned log key (and, when asked,
  a valid cosignature of each pinned witness: a witness cosigns only a tree that
  extends every tree it cosigned before, so a log cannot show this token's holder a
  tree it hides from everyone else without that witness's help);
- the entry must name this token (its SHA-256, or the jti asked for) and be in the
  canonical encoding;
- the proof must put the entry's leaf at its index in that tree;
- for a token at hand, the entry must say what the token says: ``iss``, ``sub``,
  ``aud``, ``jti``, ``iat``, ``exp``, and the header's ``kid`` and ``alg``. A log that
  records other claims than the token carries is not a record of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from federation.auditor.remote import InclusionAnswer
from federation.errors import LogVerificationFailed, ResourceNotFound
from federation.transparency.checkpoints import Checkpoint, open_checkpoint
from federation.transparency.entries import LogEntry, token_sha256
from federation.transparency.merkle import leaf_hash
from federation.transparency.notes import NoteVerifier, open_note

POLL_INTERVAL = 0.25  # seconds between asks while waiting for a token to be logged


class ProofSource(Protocol):
    """Where inclusion proofs come from: the issuer's API."""

    def inclusion(
        self, *, jti: str | None = None, token_sha256: str | None = None, size: int | None = None
    ) -> InclusionAnswer: ...


@dataclass(frozen=True)
class LoggedToken:
    """A verified inclusion: the entry, its index, the signed tree that includes it,
    and the witnesses whose cosignature on that tree verified."""

    index: int
    head: Checkpoint
    checkpoint: str  # the signed note
    entry: LogEntry
    witnesses: tuple[str, ...] = ()


def parse_witness(text: str) -> NoteVerifier:
    """A witness's verifier key, as ``--witness`` takes it."""
    from federation.transparency.cosignatures import parse_witness_key

    return parse_witness_key(text)


def prove(
    log: ProofSource,
    log_key: NoteVerifier,
    *,
    token: str | None = None,
    jti: str | None = None,
    size: int | None = None,
    witnesses: Sequence[NoteVerifier] = (),
    wait: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> LoggedToken:
    """The verified inclusion of ``token`` (or of the token whose id is ``jti``) in the
    tree of ``size`` entries (default: the latest). A token the log does not hold yet
    is asked for again for up to ``wait`` seconds (a log signs a new tree within about
    a second of issuing), then :class:`ResourceNotFound`; likewise a tree that does
    not carry every witness's cosignature yet (witnesses cosign within about a second
    of the tree), until the deadline, when :func:`check_inclusion` says what is missing."""
    digest = token_sha256(token) if token is not None else None
    deadline = monotonic() + wait
    while True:
        try:
            answer = log.inclusion(jti=jti, token_sha256=digest, size=size)
        except ResourceNotFound:
            if monotonic() + POLL_INTERVAL > deadline:
                raise ResourceNotFound(
                    "the transparency log does not include this token"
                    + (" (yet: a token is logged within seconds of its issue)" if wait else "")
                ) from None
            sleep(POLL_INTERVAL)
            continue
        if size is not None or monotonic() + POLL_INTERVAL > deadline:
            break
        if all(_cosigned(answer.checkpoint, witness) for witness in witnesses):
            break
        sleep(POLL_INTERVAL)
    return check_inclusion(answer, log_key, token=token, jti=jti, witnesses=witnesses)


def check_inclusion(
    answer: InclusionAnswer,
    log_key: NoteVerifier,
    *,
    token: str | None = None,
    jti: str | None = None,
    witnesses: Sequence[NoteVerifier] = (),
) -> LoggedToken:
    """Checks ``answer`` as the module's docstring says; :class:`LogVerificationFailed`
    at the first check that fails."""
    if answer.checkpoint is None:
        raise ResourceNotFound(
            f"the log signed no checkpoint of {answer.tree_size} entries to prove against; "
            "ask for the size of a signed one, or the latest"
        )
    try:
        head = open_checkpoint(answer.checkpoint, [log_key])
    except LogVerificationFailed as exc:
        raise LogVerificationFailed(
            f"the checkpoint of the inclusion proof does not verify with the pinned log key: "
            f"{exc.detail}"
        ) from None
    if head.size != answer.tree_size:
        raise LogVerificationFailed(
            f"the proof is for a tree of {answer.tree_size} entries, its checkpoint of {head.size}"
        )
    for witness in witnesses:
        _check_cosigned(answer.checkpoint, witness)
    entry = LogEntry.decode(answer.entry)
    if token is not None and entry.token_sha256 != token_sha256(token):
        raise LogVerificationFailed(f"the log's entry {answer.index} is of another token")
    if jti is not None and entry.jti != jti:
        raise LogVerificationFailed(f"the log's entry {answer.index} is of the token {entry.jti}")
    head.verify_inclusion(leaf_hash(answer.entry), answer.index, answer.proof)
    return LoggedToken(
        index=answer.index,
        head=head,
        checkpoint=answer.checkpoint,
        entry=entry,
        witnesses=tuple(witness.name for witness in witnesses),
    )


def check_claims(entry: LogEntry, header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
    """Checks that ``entry`` records the token of ``header`` and ``claims`` (verified
    already); :class:`LogVerificationFailed` naming the first field that differs."""
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) == 1:
        audience = audience[0]
    carried = {
        "iss": claims.get("iss"),
        "sub": claims.get("sub"),
        "aud": audience,
        "jti": claims.get("jti"),
        "iat": claims.get("iat"),
        "exp": claims.get("exp"),
        "kid": header.get("kid"),
        "alg": header.get("alg"),
    }
    for name, value in carried.items():
        logged = getattr(entry, name)
        if logged != value:
            raise LogVerificationFailed(
                f"the log records {name} {logged!r} for this token, which carries {value!r}"
            )


def _cosigned(signed: str | None, witness: NoteVerifier) -> bool:
    """Whether ``signed`` carries a valid cosignature of ``witness`` (yet)."""
    try:
        _check_cosigned(signed or "", witness)
    except LogVerificationFailed:
        return False
    return True


def _check_cosigned(signed: str, witness: NoteVerifier) -> None:
    # NOTE: opened with the witness's key alone, so that only its signature counts.
    try:
        open_note(signed, [witness])
    except LogVerificationFailed as exc:
        raise LogVerificationFailed(
            f"the checkpoint carries no valid cosignature of the witness {witness.name}: "
            f"{exc.detail}"
        ) from None
