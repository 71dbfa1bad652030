"""The log's service: its checkpoints, signed at least once a second while entries
arrive, and what auditors read, each checked against the latest signed checkpoint.

Every worker and replica signs: checkpoints of one size have one root (the log is
append-only), and the first kept of a size is the one served. Tiles, bundles and proofs
are served for the tree of the latest checkpoint, never beyond it, so that everything an
auditor reads verifies against a checkpoint it can fetch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

from federation.clock import Clock
from federation.errors import (
    InternalError,
    InvalidRequest,
    LogVerificationFailed,
    ResourceNotFound,
)
from federation.keys.log_keys import LogKeyStore, signers
from federation.store.log import LogRecords, SignedCheckpoint
from federation.transparency.checkpoints import Checkpoint, sign_checkpoint
from federation.transparency.merkle import (
    HASH_SIZE,
    Frontier,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
)
from federation.transparency.notes import Ed25519NoteSigner
from federation.transparency.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    TileHashes,
    encode_bundle,
    parse_path,
)

log = logging.getLogger("federation.log")
SIGNING_INTERVAL = 0.5  # seconds between looks for new entries to checkpoint


@dataclass(frozen=True)
class Served:
    """A tile or entry bundle: its bytes, and whether it is full (then immutable)."""

    data: bytes
    full: bool


@dataclass(frozen=True)
class Inclusion:
    index: int
    tree_size: int
    entry: bytes
    proof: list[bytes]
    checkpoint: str | None


class Ledger:
    """The log of one issuer: ``origin`` names it; its keys sign its checkpoints."""

    def __init__(self, records: LogRecords, keys: LogKeyStore, origin: str, clock: Clock) -> None:
        self.records = records
        self.origin = origin
        self._keys = keys
        self._clock = clock
        self._signers: list[Ed25519NoteSigner] | None = None
        self._lock = Lock()
        # the largest checkpoint this process signed or served: a tree it signs must
        # extend it, even if the stored checkpoints were deleted
        self._last: SignedCheckpoint | None = None

    @property
    def signers(self) -> list[Ed25519NoteSigner]:
        """The live log keys' signers, newest first (read, or made, on first use)."""
        if self._signers is None:
            with self._lock:
                if self._signers is None:
                    self._signers = signers(self._keys, self.origin, self._clock.now())
        return self._signers

    @property
    def verifier_key(self) -> str:
        """The newest key's note verifier key, as auditors pin it."""
        return self.signers[0].verifier.verifier_key

    def sign(self) -> SignedCheckpoint:
        """A checkpoint of the tree as committed now, signed and kept, unless the latest
        kept checkpoint is of that size already; answers the latest.

        Before the log's key signs a tree, the tree is checked against the stored
        hashes and against the last checkpoint this process signed or served and the
        latest kept one: a tree that does not extend them (rows rewritten, deleted or
        reordered in the database) is never signed."""
        head = self.records.head()
        latest = self.records.latest_checkpoint()
        if latest is not None and latest.size >= head.size:
            self._seen(latest)
            return latest
        self._check_extends(head, [c for c in (latest, self._last) if c is not None])
        checkpoint = Checkpoint(self.origin, head.size, head.root)
        signed = SignedCheckpoint(
            head.size, head.root, sign_checkpoint(checkpoint, *self.signers), self._clock.now()
        )
        if self.records.record_checkpoint(signed):
            self._seen(signed)
            return signed
        kept = self.records.checkpoint(head.size)
        if kept is None or kept.root != signed.root:
            raise InternalError(f"the log holds another checkpoint of size {head.size}")
        self._seen(kept)
        return kept

    def _seen(self, checkpoint: SignedCheckpoint) -> None:
        if self._last is None or checkpoint.size >= self._last.size:
            self._last = checkpoint

    def _check_extends(self, head: Frontier, signed: list[SignedCheckpoint]) -> None:
        """Refuse to sign ``head`` unless the stored hashes make exactly its root and
        it extends every one of ``signed``."""
        reader = TileHashes(head.size, self.records)
        try:
            if Frontier.from_reader(head.size, reader).root != head.root:
                raise LogVerificationFailed("the stored hashes do not make the head's root")
            for old in signed:
                if old.size > head.size:
                    raise LogVerificationFailed(
                        f"the head has {head.size} entries, less than the {old.size} signed"
                    )
                proof = consistency_proof(old.size, head.size, reader)
                verify_consistency(old.size, head.size, old.root, head.root, proof)
        except (LogVerificationFailed, InvalidRequest) as exc:
            log.critical(
                "transparency log: NOT signing a tree of %d entries: it does not extend "
                "what was signed before (%s); the log's rows were changed in the database",
                head.size,
                exc.detail,
            )
            raise InternalError("the log's stored tree does not extend its signed one") from None

    def latest(self) -> SignedCheckpoint:
        """The latest signed checkpoint (the empty tree's, signed now, for a new log)."""
        latest = self.records.latest_checkpoint()
        if latest is None:
            return self.sign()
        self._seen(latest)
        return latest

    def served(self, path: str) -> Served:
        """The tile or entry bundle at ``path`` (``tile/...``), for the latest tree."""
        item = parse_path(path)
        size = self.latest().size
        if isinstance(item, Tile):
            available = size >> (TILE_HEIGHT * item.level)
            _check_within(item.index, item.width, available, item.path)
            data = self.records.read_tiles([item])[0]
            if len(data) != item.width * HASH_SIZE:
                _missing(item.path)
            return Served(data, item.full)
        _check_within(item.index, item.width, size, item.path)
        entries = self.records.bundle(item)
        if len(entries) != item.width:
            _missing(item.path)
        return Served(encode_bundle(entries), item.full)

    def inclusion(
        self, *, jti: str | None, token_sha256: str | None, size: int | None
    ) -> Inclusion:
        """Where a token's entry is, and the proof that the tree of ``size`` leaves
        (default: the latest checkpoint's, signed now if the entry came after it)
        holds it."""
        if (jti is None) == (token_sha256 is None):
            raise InvalidRequest("name the token by exactly one of jti and token_sha256")
        index = self.records.find(jti=jti, token_sha256=token_sha256)
        if index is None:
            raise ResourceNotFound("no token with that jti or SHA-256 is in the log")
        latest = self.latest()
        if size is None and index >= latest.size:
            latest = self.sign()
        size = latest.size if size is None else size
        if not 0 <= size <= latest.size:
            raise InvalidRequest(f"the log's latest checkpoint is of {latest.size} entries")
        if index >= size:
            raise ResourceNotFound(f"the token's entry {index} is not in the tree of {size}")
        proof = _stored(lambda: inclusion_proof(index, size, TileHashes(latest.size, self.records)))
        signed = latest if size == latest.size else self.records.checkpoint(size)
        entry = self.records.entries(index, 1)
        if len(entry) != 1:
            raise InternalError(f"the log's entry {index} is missing")
        return Inclusion(index, size, entry[0], proof, signed.note if signed else None)

    def consistency(self, old: int, new: int | None) -> tuple[int, int, list[bytes]]:
        """The proof that the tree of ``new`` leaves (default: the latest checkpoint's)
        extends the tree of ``old``."""
        latest = self.latest()
        new = latest.size if new is None else new
        if not 0 <= old <= new <= latest.size:
            raise InvalidRequest(
                f"0 <= old <= new <= {latest.size} (the latest checkpoint's size) is required"
            )
        proof = _stored(lambda: consistency_proof(old, new, TileHashes(latest.size, self.records)))
        return old, new, proof


def _missing(path: str) -> None:
    # NOTE: served as stored, short: an auditor checking it against the signed tree
    # reports the log as failing verification, which it is
    log.error("transparency log: rows of %s are missing from the database", path)


def _stored(proof: Callable[[], list[bytes]]) -> list[bytes]:
    """A proof computed from the stored hashes; rows missing there are the log's fault,
    never the request's."""
    try:
        return proof()
    except (LogVerificationFailed, InvalidRequest) as exc:
        log.error("transparency log: a proof cannot be made from the stored rows: %s", exc.detail)
        raise InternalError("the log's stored hashes are incomplete") from None


def _check_within(index: int, width: int, available: int, path: str) -> None:
    if index * TILE_WIDTH + width > available:
        raise ResourceNotFound(f"{path} is beyond the log's latest checkpoint")


async def sign_forever(ledger: Ledger, interval: float = SIGNING_INTERVAL) -> None:
    """Sign a checkpoint whenever entries arrived, looking every ``interval`` seconds."""
    while True:
        try:
            await asyncio.to_thread(ledger.sign)
        except Exception:  # NOTE: a failed round (the database away) must not end it
            log.exception("transparency log: signing a checkpoint failed; trying again")
        await asyncio.sleep(interval)
