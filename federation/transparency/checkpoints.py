"""C2SP ``tlog-checkpoint``: the log's tree head, signed as a note.

The note text is at least three lines: the origin (the log's name, a schema-less URL
such as ``issuer.example.com/log``), the tree size in decimal without leading zeros, and
the base64 root hash; then optional extension lines, each non-empty. The log signs it
with a note key named after the origin::

    issuer.example.com/log
    1234
    Fb8sRQ6/wn6A0nnkpR+8sXTqiNbD8qv4N07sh4zoyMU=

    — issuer.example.com/log Az3grl...

A log never signs two checkpoints that are inconsistent with each other; the checks
here are how a reader finds out if it did.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency.merkle import (
    HASH_SIZE,
    Frontier,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from federation.transparency.notes import NoteSigner, NoteVerifier, open_note, sign_note

MAX_SIZE = 2**63 - 1
_SIZE = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not line or any(ch < " " for ch in line):
                raise InvalidRequest("a checkpoint line is not empty and holds no control")
        if not 0 <= self.size <= MAX_SIZE:
            raise InvalidRequest(f"a tree size is 0 to {MAX_SIZE}")
        if len(self.root) != HASH_SIZE:
            raise InvalidRequest(f"a root hash is {HASH_SIZE} bytes")

    @property
    def text(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each with its
        newline."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """The checkpoint in a note's text; :class:`LogVerificationFailed` when it is
        not one, written the one way :attr:`text` writes it."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise LogVerificationFailed("a checkpoint has three lines or more, each ending")
        origin, size, root, *extensions = lines[:-1]
        if len(size) > len(str(MAX_SIZE)) or not _SIZE.fullmatch(size) or int(size) > MAX_SIZE:
            raise LogVerificationFailed("a checkpoint's size is a decimal number")
        try:
            raw = base64.b64decode(root, validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != root:
            raise LogVerificationFailed("a checkpoint's root is a base64 SHA-256 hash")
        try:
            return cls(origin, int(size), raw, tuple(extensions))
        except InvalidRequest as exc:
            raise LogVerificationFailed(f"not a checkpoint: {exc.detail}") from exc

    def verify_inclusion(self, leaf: bytes, index: int, proof: Sequence[bytes]) -> None:
        """Checks that ``proof`` puts ``leaf`` at ``index`` in this tree."""
        verify_inclusion(leaf, index, self.size, proof, self.root)

    def verify_extends(self, old: Checkpoint, proof: Sequence[bytes]) -> None:
        """Checks that this tree extends the ``old`` one of the same log: a smaller
        tree is a rollback, the same size with another root a fork."""
        if old.origin != self.origin:
            raise LogVerificationFailed(f"{self.origin} is not the log {old.origin}")
        if self.size < old.size:
            raise LogVerificationFailed(
                f"the log went back from {old.size} entries to {self.size}: it was rewritten"
            )
        verify_consistency(old.size, self.size, old.root, self.root, proof)

    def verify_entries(self, entries: Iterable[bytes], start: Frontier | None = None) -> Frontier:
        """Checks that ``entries``, after the tree ``start`` (a verified earlier
        checkpoint's edge; none: the empty tree), make exactly this tree; returns this
        tree's edge, for the next call. A match also proves that this tree extends the
        earlier one, without a consistency proof."""
        frontier = start.copy() if start is not None else Frontier()
        frontier.extend(leaf_hash(entry) for entry in entries)
        if frontier.size != self.size:
            raise LogVerificationFailed(f"{frontier.size} entries for a checkpoint of {self.size}")
        if frontier.root != self.root:
            raise LogVerificationFailed(
                f"the entries do not hash to the root of the checkpoint of {self.size}"
            )
        return frontier


def sign_checkpoint(checkpoint: Checkpoint, *signers: NoteSigner) -> str:
    """The signed note of ``checkpoint``; one of ``signers`` is the log's key, named
    after the checkpoint's origin."""
    if all(signer.name != checkpoint.origin for signer in signers):
        raise InvalidRequest("the log's note key is named after the checkpoint's origin")
    return sign_note(checkpoint.text, *signers)


def open_checkpoint(
    message: str | bytes, verifiers: Sequence[NoteVerifier], *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint in a signed note, once the signature of one of ``verifiers``
    named after its origin verified (and its origin is ``origin``, when given);
    :class:`LogVerificationFailed` otherwise."""
    note = open_note(message, verifiers)
    checkpoint = Checkpoint.parse(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise LogVerificationFailed(f"the checkpoint is of {checkpoint.origin}, not {origin}")
    if all(signature.name != checkpoint.origin for signature in note.signatures):
        # NOTE: a cosigner's key alone does not make a tree head the log's.
        raise LogVerificationFailed("the checkpoint is not signed by its log's key")
    return checkpoint
