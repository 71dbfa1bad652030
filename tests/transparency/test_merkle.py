"""RFC 9162 §2.1 hashing and proofs: the Certificate Transparency reference vectors,
a literal transcription of the RFC's recursive definitions as the oracle for every
small tree, and the corrupted proofs a verifier must refuse."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from federation.errors import InternalError, InvalidRequest, LogVerificationFailed
from federation.transparency import (
    EMPTY_ROOT,
    Frontier,
    MemoryHashes,
    Node,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "rfc6962.json").read_text(encoding="utf-8")
)
LEAVES = [leaf_hash(bytes.fromhex(leaf)) for leaf in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(root) for root in VECTORS["roots"]]
SOME_HASH = hashlib.sha256(b"some other hash").digest()


# ---- the RFC's definitions, transcribed literally (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1)


def mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return d[0]  # d holds leaf hashes: MTH({d(0)}) = SHA-256(0x00 || d(0))
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def leaves(count: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(count)]


# ---- vectors


def test_hashing_is_rfc_9162() -> None:
    assert leaf_hash(b"entry") == hashlib.sha256(b"\x00entry").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_roots_of_the_reference_tree(size: int) -> None:
    assert root_hash(LEAVES[:size]) == ROOTS[size]
    assert tree_hash(size, MemoryHashes(LEAVES)) == ROOTS[size]


@pytest.mark.parametrize("vector", VECTORS["inclusion"], ids=lambda v: f"{v['index']}in{v['size']}")
def test_inclusion_proofs_of_the_reference_tree(vector: dict[str, Any]) -> None:
    index, size = vector["index"], vector["size"]
    expected = [bytes.fromhex(h) for h in vector["proof"]]
    assert inclusion_proof(index, size, MemoryHashes(LEAVES)) == expected
    verify_inclusion(LEAVES[index], index, size, expected, ROOTS[size])


@pytest.mark.parametrize("vector", VECTORS["consistency"], ids=lambda v: f"{v['old']}to{v['new']}")
def test_consistency_proofs_of_the_reference_tree(vector: dict[str, Any]) -> None:
    old, new = vector["old"], vector["new"]
    expected = [bytes.fromhex(h) for h in vector["proof"]]
    assert consistency_proof(old, new, MemoryHashes(LEAVES)) == expected
    verify_consistency(old, new, ROOTS[old], ROOTS[new], expected)


# ---- every small tree against the RFC's recursion


def test_every_proof_of_every_tree_up_to_70_leaves_is_the_rfcs() -> None:
    hashes = leaves(70)
    memory = MemoryHashes(hashes)
    for size in range(1, 71):
        root = mth(hashes[:size])
        assert tree_hash(size, memory) == root
        for index in range(size):
            proof = inclusion_proof(index, size, memory)
            assert proof == path(index, hashes[:size]), (index, size)
            verify_inclusion(hashes[index], index, size, proof, root)
        for old in range(1, size + 1):
            proof = consistency_proof(old, size, memory)
            assert proof == subproof(old, hashes[:size], True), (old, size)
            verify_consistency(old, size, mth(hashes[:old]), root, proof)


def test_a_proof_reads_the_store_once() -> None:
    class Counting(MemoryHashes):
        calls = 0

        def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
            self.calls += 1
            return super().read_hashes(nodes)

    reader = Counting(leaves(1000))
    inclusion_proof(377, 999, reader)
    consistency_proof(377, 999, reader)
    tree_hash(999, reader)
    assert reader.calls == 3


# ---- what a verifier refuses (the probes of the CT implementations' tests)


def inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, tuple[Any, ...]]]:
    probes: list[tuple[str, tuple[Any, ...]]] = [
        ("index - 1", (leaf, index - 1, size, proof, root)),
        ("index + 1", (leaf, index + 1, size, proof, root)),
        ("index ^ 2", (leaf, index ^ 2, size, proof, root)),
        ("size * 2", (leaf, index, size * 2, proof, root)),
        ("size // 2", (leaf, index, size // 2, proof, root)),
        ("wrong leaf", (SOME_HASH, index, size, proof, root)),
        ("empty root", (leaf, index, size, proof, EMPTY_ROOT)),
        ("other root", (leaf, index, size, proof, SOME_HASH)),
        ("trailing root", (leaf, index, size, [*proof, root], root)),
        ("preceding root", (leaf, index, size, [root, *proof], root)),
        ("short hash", (leaf, index, size, [*proof[:-1], proof[-1][:31]], root)),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((f"proof[{i}] bit 3", (leaf, index, size, flipped, root)))
    probes.append(("removed hash", (leaf, index, size, proof[:-1], root)))
    if len(proof) > 1:
        probes.append(
            ("inserted hash", (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
        )
    return probes


@pytest.mark.parametrize(("index", "size"), [(0, 8), (5, 8), (2, 3), (1, 5), (6, 7), (12, 13)])
def test_corrupted_inclusion_proofs_are_refused(index: int, size: int) -> None:
    hashes = leaves(size)
    proof = inclusion_proof(index, size, MemoryHashes(hashes))
    root = root_hash(hashes)
    verify_inclusion(hashes[index], index, size, proof, root)
    accepted = []
    for name, args in inclusion_probes(index, size, proof, root, hashes[index]):
        with contextlib.suppress(LogVerificationFailed):
            verify_inclusion(*args)
            accepted.append(name)
    assert accepted == []


@pytest.mark.parametrize(("old", "new"), [(1, 8), (6, 8), (2, 5), (6, 7), (4, 13), (7, 64)])
def test_corrupted_consistency_proofs_are_refused(old: int, new: int) -> None:
    hashes = leaves(new)
    proof = consistency_proof(old, new, MemoryHashes(hashes))
    r1, r2 = root_hash(hashes[:old]), root_hash(hashes)
    verify_consistency(old, new, r1, r2, proof)
    probes: list[tuple[str, tuple[Any, ...]]] = [
        ("old - 1", (old - 1, new, r1, r2, proof)),
        ("old + 1", (old + 1, new, r1, r2, proof)),
        ("old ^ 2", (old ^ 2, new, r1, r2, proof)),
        ("new * 2", (old, new * 2, r1, r2, proof)),
        ("new // 2", (old, new // 2, r1, r2, proof)),
        ("wrong old root", (old, new, SOME_HASH, r2, proof)),
        ("wrong new root", (old, new, r1, SOME_HASH, proof)),
        ("swapped roots", (old, new, r2, r1, proof)),
        ("empty proof", (old, new, r1, r2, [])),
        ("trailing old root", (old, new, r1, r2, [*proof, r1])),
        ("trailing new root", (old, new, r1, r2, [*proof, r2])),
        ("preceding old root", (old, new, r1, r2, [r1, *proof])),
        ("preceding proof[0]", (old, new, r1, r2, [proof[0], *proof])),
        ("truncated", (old, new, r1, r2, proof[:-1])),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((f"proof[{i}] bit 4", (old, new, r1, r2, flipped)))
    accepted = []
    for name, args in probes:
        with contextlib.suppress(LogVerificationFailed):
            verify_consistency(*args)
            accepted.append(name)
    assert accepted == []


def test_the_edges_of_consistency() -> None:
    hashes = leaves(5)
    root = root_hash(hashes)
    verify_consistency(0, 5, EMPTY_ROOT, root, [])  # every tree extends the empty one
    verify_consistency(5, 5, root, root, [])
    with pytest.raises(LogVerificationFailed, match="the log forked"):
        verify_consistency(5, 5, root, SOME_HASH, [])
    with pytest.raises(LogVerificationFailed, match="empty tree"):
        verify_consistency(0, 5, SOME_HASH, root, [])
    with pytest.raises(LogVerificationFailed, match="is empty"):
        verify_consistency(5, 5, root, root, [root])
    with pytest.raises(LogVerificationFailed, match="cannot extend"):
        verify_consistency(5, 4, root, root, [])
    assert consistency_proof(0, 5, MemoryHashes(hashes)) == []
    assert consistency_proof(5, 5, MemoryHashes(hashes)) == []


def test_bad_arguments_are_refused() -> None:
    memory = MemoryHashes(leaves(5))
    with pytest.raises(InvalidRequest, match="leaf 5 is not in a tree of 5"):
        inclusion_proof(5, 5, memory)
    with pytest.raises(InvalidRequest):
        inclusion_proof(-1, 5, memory)
    with pytest.raises(InvalidRequest, match="from size 4 to 3"):
        consistency_proof(4, 3, memory)
    with pytest.raises(InvalidRequest, match="no complete subtree"):
        inclusion_proof(0, 6, memory)  # the reader holds 5 leaves
    with pytest.raises(InvalidRequest, match="no complete subtree"):
        memory.read_hashes([Node(0, -1)])
    with pytest.raises(InvalidRequest, match="32 bytes"):
        memory.append(b"short")
    with pytest.raises(LogVerificationFailed, match="32 bytes"):
        verify_inclusion(leaves(1)[0], 0, 2, [b"short"], EMPTY_ROOT)


def test_a_reader_that_answers_wrong_is_an_internal_error() -> None:
    class Short(MemoryHashes):
        def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
            return super().read_hashes(nodes)[1:]

    with pytest.raises(InternalError):
        inclusion_proof(0, 5, Short(leaves(5)))


# ---- the frontier: a tree's right edge


def test_the_frontier_tracks_the_root_at_every_size() -> None:
    hashes = leaves(300)
    memory = MemoryHashes()
    frontier = Frontier()
    assert frontier.root == EMPTY_ROOT
    for size, leaf in enumerate(hashes, start=1):
        memory.append(leaf)
        frontier.append(leaf)
        assert frontier.size == size
        assert len(frontier.hashes) == size.bit_count()
        expected = mth(hashes[:size]) if size < 40 else tree_hash(size, memory)
        assert frontier.root == expected
        again = Frontier.from_reader(size, memory)
        assert (again.size, again.hashes) == (size, frontier.hashes)


def test_a_frontier_has_one_hash_per_bit_of_its_size() -> None:
    with pytest.raises(InvalidRequest, match="3 edge hashes"):
        Frontier(7, leaves(2))
    copy = Frontier(3, leaves(2))
    copy.copy().append(SOME_HASH)
    assert copy.size == 3  # a copy grows on its own
