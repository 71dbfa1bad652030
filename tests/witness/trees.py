"""A log in memory for the witness's tests: it grows, signs a checkpoint of any size it
has reached, and proves consistency between two sizes (the library's own Merkle code;
the witness checks the proofs with the same code, so the tests also hand it forks and
broken proofs that this code would never make)."""

from __future__ import annotations

from federation.transparency import (
    Checkpoint,
    Ed25519NoteSigner,
    MemoryHashes,
    consistency_proof,
    leaf_hash,
    sign_checkpoint,
    tree_hash,
)
from tests.transparency.logs import log_key, sample_entries


class MemoryLog:
    """A log of ``size`` sample entries (another ``salt``: another log's entries, for
    forks), signed by ``key``. A
    :class:`~federation.auditor.witness_push.CheckpointSource` too."""

    def __init__(
        self, size: int = 0, *, key: Ed25519NoteSigner | None = None, salt: bytes = b""
    ) -> None:
        self.key = key or log_key()
        self.salt = salt
        self.hashes = MemoryHashes()
        self.grow(size)

    @property
    def origin(self) -> str:
        return self.key.name

    @property
    def size(self) -> int:
        return self.hashes.size

    def grow(self, count: int) -> None:
        start = self.hashes.size
        for entry in sample_entries(start + count)[start:]:
            self.hashes.append(leaf_hash(self.salt + entry))

    def head(self, size: int | None = None) -> Checkpoint:
        size = self.size if size is None else size
        return Checkpoint(self.origin, size, tree_hash(size, self.hashes))

    def signed(self, size: int | None = None) -> str:
        return sign_checkpoint(self.head(size), self.key)

    # CheckpointSource
    def checkpoint(self) -> str:
        return self.signed()

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(old_size, new_size, self.hashes)
