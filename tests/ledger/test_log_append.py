"""What a batch appends to the log: consecutive indexes, and the tile-level hashes (levels
8 and 16) equal to those of the whole tree computed independently, across batches of any
size, from the head a previous batch left."""

from __future__ import annotations

import hashlib

from federation.store.issuing.log_append import appended, edge_hashes
from federation.store.issuing.port import AuditEntry, LoggedToken


def entry(i: int) -> AuditEntry:
    data = f'{{"i":{i}}}'.encode()
    return AuditEntry({"jti": f"j{i}"}, logged=LoggedToken(data, hashlib.sha256(data).hexdigest()))


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def complete_subtrees(leaves: list[bytes], level: int) -> list[bytes]:
    """Every complete subtree's hash at ``level``, by plain RFC 9162 hashing."""
    hashes = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    for _ in range(level):
        hashes = [node(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
    return hashes


def test_batches_append_consecutively_with_every_tile_level_hash() -> None:
    total = 65_536 + 300  # a level-16 hash, and level-8 hashes on both sides of it
    size, edge = 0, b""
    stored: dict[tuple[int, int], bytes] = {}
    batches = [1, 255, 1, 4_000, 61_279, 300]
    assert sum(batches) == total
    start = 0
    for count in batches:
        change = appended(size, edge, [entry(i) for i in range(start, start + count)])
        assert [row["idx"] for row in change.entries] == list(range(start, start + count))
        assert change.indexes == {f"j{i}": i for i in range(start, start + count)}
        for row in change.hashes:
            key = (row["level"], row["idx"])
            assert key not in stored
            stored[key] = row["hash"]
        size, edge, start = change.size, change.edge, start + count
        assert len(edge_hashes(edge)) == size.bit_count()
    leaves = [f'{{"i":{i}}}'.encode() for i in range(total)]
    for level in (8, 16):
        expected = complete_subtrees(leaves, level)
        found = [stored[(level, i)] for i in range(len(expected))]
        assert found == expected
    assert {level for level, _ in stored} == {8, 16}


def test_rows_without_a_log_entry_append_nothing() -> None:
    unlogged = appended(0, b"", [AuditEntry({"jti": "x"})])
    assert unlogged.entries == []
    assert unlogged.hashes == []
    assert unlogged.size == 0
