"""Merkle trees as RFC 9162 §2.1 defines them: hashing, tree heads, inclusion and
consistency proofs, and their verification.

A leaf hashes as ``SHA-256(0x00 || entry)``, an interior node as ``SHA-256(0x01 || left
|| right)``, and the tree over ``n`` leaves splits at the largest power of two smaller
than ``n`` (RFC 9162 §2.1.1). The empty tree's hash is ``SHA-256("")``.

Proofs are computed from a :class:`HashReader`, which answers the hashes of *complete*
subtrees (a :class:`Node`: ``2**level`` leaves from leaf ``index << level``): the hashes
a log stores, or reads from its tiles. Every other hash a proof needs is folded from
those. A proof is planned first (which nodes it needs), read in one call, then
assembled, so that a database answers it with one query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from federation.errors import (
    FederationError,
    InternalError,
    InvalidRequest,
    LogVerificationFailed,
)

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


@dataclass(frozen=True, slots=True)
class Node:
    """The complete subtree of ``2**level`` leaves that starts at leaf ``index << level``
    (level 0: the leaf ``index`` itself)."""

    level: int
    index: int


class HashReader(Protocol):
    """Where proofs read the hashes of complete subtrees: a store, tiles, memory."""

    def read_hashes(self, nodes: Sequence[Node]) -> Sequence[bytes]:
        """The hash of each of ``nodes``, in their order; every node lies in the tree
        the caller proves against, so a reader of a larger tree answers them too."""
        ...


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``: the hash of one log entry."""
    return hashlib.sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(_NODE + left + right).digest()


def subtree_hash(hashes: Sequence[bytes]) -> bytes:
    """The hash of a complete subtree from its ``2**k`` lowest hashes, left to right."""
    if not hashes or len(hashes) & (len(hashes) - 1):
        raise InvalidRequest("a complete subtree has a power of two hashes")
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


class MemoryHashes:
    """Every complete subtree's hash of a growing tree, in memory: a :class:`HashReader`
    over leaf hashes. Appending a leaf costs one node hash, amortised."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    def append(self, leaf: bytes) -> int:
        """Adds a leaf hash; returns its index."""
        _check_hash(leaf, "leaf hash")
        levels = self._levels
        position = len(levels[0])
        levels[0].append(leaf)
        level, index = 0, position
        while index & 1:  # the node completes a pair: its parent is complete too
            parent = node_hash(levels[level][index - 1], levels[level][index])
            level, index = level + 1, index >> 1
            if len(levels) == level:
                levels.append([])
            levels[level].append(parent)
        return position

    def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
        levels = self._levels
        hashes = []
        for node in nodes:
            level, index = node.level, node.index
            if not (0 <= level < len(levels) and 0 <= index < len(levels[level])):
                raise InvalidRequest(f"no complete subtree {level}/{index} in {self.size} leaves")
            hashes.append(levels[level][index])
        return hashes


class Frontier:
    """The right edge of a tree: the hashes of its largest complete subtrees, left to
    right (one per bit set in its size). Enough to compute the tree's hash and to append
    to it, so a monitor keeps a few hashes and checks the entries it reads against the
    next checkpoint, which also proves that the new tree extends the old one."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise InvalidRequest(f"a tree of {size} leaves has {size.bit_count()} edge hashes")
        for value in hashes:
            _check_hash(value, "edge hash")
        self.size = size
        self.hashes = list(hashes)

    @classmethod
    def from_reader(cls, size: int, reader: HashReader) -> Frontier:
        """The right edge of the tree of ``size`` leaves, read from ``reader``."""
        return cls(size, reader.read_hashes(_subtrees(0, size)))

    def append(self, leaf: bytes) -> list[bytes]:
        """Adds a leaf hash, merging the subtrees it completes. Answers the hashes of the
        complete subtrees that end with the new leaf, by level: the leaf's own first,
        then its parent's when the leaf completes a pair, and so on (what a log stores)."""
        _check_hash(leaf, "leaf hash")
        self.hashes.append(leaf)
        self.size += 1
        completed = [leaf]
        merges = (self.size & -self.size).bit_length() - 1  # trailing zeros of the size
        for _ in range(merges):
            right = self.hashes.pop()
            self.hashes[-1] = node_hash(self.hashes[-1], right)
            completed.append(self.hashes[-1])
        return completed

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Appends each leaf hash in turn."""
        for leaf in leaves:
            self.append(leaf)

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)

    @property
    def root(self) -> bytes:
        """The tree's hash (RFC 9162 MTH)."""
        return _fold(self.hashes) if self.hashes else EMPTY_ROOT


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """The hash of the tree over ``leaf_hashes`` (the tree head's root)."""
    frontier = Frontier()
    frontier.extend(leaf_hashes)
    return frontier.root


def tree_hash(size: int, reader: HashReader) -> bytes:
    """The hash of the first ``size`` leaves of the tree ``reader`` holds."""
    if size < 0:
        raise InvalidRequest("a tree size cannot be negative")
    return Frontier.from_reader(size, reader).root


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162
    §2.1.3.1), leaf to root."""
    if not 0 <= index < size:
        raise InvalidRequest(f"leaf {index} is not in a tree of {size} leaves")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()  # PATH appends the sibling nearer the root after the deeper path
    return _range_hashes(ranges, reader)


def consistency_proof(old_size: int, new_size: int, reader: HashReader) -> list[bytes]:
    """The proof that the tree of ``new_size`` leaves extends the one of ``old_size``
    (RFC 9162 §2.1.4.1); empty when the sizes are equal or the old tree is empty."""
    if not 0 <= old_size <= new_size:
        raise InvalidRequest(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, whole = 0, new_size, True
    while old_size - lo != hi - lo:  # SUBPROOF(m, D[lo:hi], whole) with m = old_size - lo
        k = _split(hi - lo)
        if old_size - lo <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, whole = lo + k, False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return _range_hashes(ranges, reader)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Checks that ``proof`` puts ``leaf`` at ``index`` in the tree of ``size`` leaves
    whose hash is ``root`` (RFC 9162 §2.1.3.2); :class:`LogVerificationFailed` if not."""
    if not 0 <= index < size:
        raise LogVerificationFailed(f"leaf {index} is not in a tree of {size} leaves")
    _check_proof(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise LogVerificationFailed("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise LogVerificationFailed(f"leaf {index} is not in the tree of {size} leaves")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Checks that ``proof`` shows the tree ``new_root`` of ``new_size`` leaves to extend
    the tree ``old_root`` of ``old_size`` leaves (RFC 9162 §2.1.4.2); the same size with
    two roots is a fork. :class:`LogVerificationFailed` if not."""
    _check_proof(proof)
    if not 0 <= old_size <= new_size:
        raise LogVerificationFailed(f"a tree of {new_size} leaves cannot extend one of {old_size}")
    if old_size == 0 or old_size == new_size:
        if proof:
            raise LogVerificationFailed("a consistency proof between these sizes is empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise LogVerificationFailed("the empty tree has another hash")
        if old_size and old_root != new_root:
            raise LogVerificationFailed(f"two trees of {old_size} leaves: the log forked")
        return
    if not proof:
        raise LogVerificationFailed("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a proof node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise LogVerificationFailed("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise LogVerificationFailed(
            f"the tree of {new_size} leaves does not extend the tree of {old_size}"
        )


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtrees(lo: int, hi: int) -> list[Node]:
    """The complete subtrees that make up leaves ``[lo, hi)``, largest first, as the RFC
    splits them. Every range the RFC recursion yields is aligned, so each is a node."""
    nodes = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        nodes.append(Node(level, lo >> level))
        lo += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its complete subtrees, largest first: the right-hand
    ones pair up first, as the RFC's split does."""
    result = hashes[-1]
    for value in reversed(hashes[:-1]):
        result = node_hash(value, result)
    return result


def _range_hashes(ranges: Sequence[tuple[int, int]], reader: HashReader) -> list[bytes]:
    """MTH of each range, from one read of every node they need."""
    plans = [_subtrees(lo, hi) for lo, hi in ranges]
    hashes = list(reader.read_hashes([node for plan in plans for node in plan]))
    if len(hashes) != sum(map(len, plans)):
        raise InternalError("the hash reader answered another number of hashes")
    result, start = [], 0
    for plan in plans:
        part = hashes[start : start + len(plan)]
        for value in part:
            _check_hash(value, "stored hash", InternalError)
        result.append(_fold(part))
        start += len(plan)
    return result


def _check_hash(value: bytes, what: str, error: type[FederationError] = InvalidRequest) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise error(f"a {what} is {HASH_SIZE} bytes")


def _check_proof(proof: Sequence[bytes]) -> None:
    for value in proof:
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise LogVerificationFailed(f"a proof hash is {HASH_SIZE} bytes")
