"""The C2SP tlog-tiles layout: paths, which tiles a tree has and which are full, tile
contents, proofs read from tiles, and entry bundles."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency import (
    EntryBundle,
    MemoryHashes,
    Node,
    Tile,
    TileHashes,
    bundles_for_size,
    consistency_proof,
    decode_bundle,
    encode_bundle,
    inclusion_proof,
    leaf_hash,
    new_bundles,
    new_tiles,
    parse_path,
    root_hash,
    tile_data,
    tile_hashes,
    tiles_for_size,
    tree_hash,
)
from tests.transparency.logs import DirectoryTiles, write


@pytest.mark.parametrize(
    ("thing", "path"),
    [
        # Go's tlog documents 1234067 as x001/x234/067 (its paths carry the height, 8/).
        (Tile(4, 1234067, 1), "tile/4/x001/x234/067.p/1"),
        (Tile(4, 1234067), "tile/4/x001/x234/067"),
        (Tile(0, 0), "tile/0/000"),
        (Tile(0, 0, 255), "tile/0/000.p/255"),
        (Tile(1, 999), "tile/1/999"),
        (Tile(1, 1000), "tile/1/x001/000"),
        (Tile(63, 5), "tile/63/005"),
        (EntryBundle(0, 7), "tile/entries/000.p/7"),
        (EntryBundle(123456789), "tile/entries/x123/x456/789"),
    ],
)
def test_paths(thing: Tile | EntryBundle, path: str) -> None:
    assert thing.path == path
    assert parse_path(path) == thing


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/x000/001",  # a leading zero group: one resource, one path
        "tile/0/001.p/256",  # a full tile has no width
        "tile/0/001.p/0",
        "tile/0/001.p/07",
        "tile/0/01",
        "tile/0/0001",
        "tile/00/001",
        "tile/64/000",
        "tile/-1/000",
        "tile/data/000",
        "tile/entries/000.p/",
        "tile/0/x001",
        "tile/0/001/",
        "/tile/0/001",
        "tile/0/../0/001",
        "tile/0/\uff10\uff10\uff11",  # digits, but not ASCII ones
        "checkpoint",
        "",
    ],
)
def test_other_paths_are_not_tiles(path: str) -> None:
    with pytest.raises(InvalidRequest, match="tile"):
        parse_path(path)


def test_tile_bounds() -> None:
    for level, index, width in [(0, 0, 0), (0, 0, 257), (64, 0, 256), (0, -1, 256)]:
        with pytest.raises(InvalidRequest):
            Tile(level, index, width)
    assert Tile(0, 3).full
    assert not Tile(0, 3, 255).full
    assert EntryBundle(2).start == 512


def test_the_specifications_examples_of_which_tiles_a_tree_has() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
    # level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of
    # width 17, and one partial level 2 tile of width 1"
    tiles = tiles_for_size(70_000)
    assert tiles == [
        *(Tile(0, n) for n in range(273)),
        Tile(0, 273, 112),
        Tile(1, 0),
        Tile(1, 1, 17),
        Tile(2, 0, 1),
    ]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial
    # level 1 tile of width 1"
    assert tiles_for_size(256) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tiles_for_size(0) == []
    assert tiles_for_size(1) == [Tile(0, 0, 1)]
    assert bundles_for_size(70_000) == [
        *(EntryBundle(n) for n in range(273)),
        EntryBundle(273, 112),
    ]


def test_a_growing_log_publishes_each_full_tile_once_and_partials_for_its_sizes() -> None:
    # At 65,536 every level-0 and level-1 tile is full: only level 2 has a partial.
    sizes = [0, 3, 3, 255, 256, 300, 513, 65_536, 65_540]
    published: list[Tile] = []
    for old, new in itertools.pairwise(sizes):
        added = new_tiles(old, new)
        published += added
        # Everything the new size needs exists: published now or before.
        assert set(tiles_for_size(new)) <= set(published)
        assert all(not tile.full or tile not in published[: -len(added)] for tile in added)
    full = [tile for tile in published if tile.full]
    assert len(full) == len(set(full))
    assert {t for t in published if not t.full} == {
        Tile(0, 0, 3),
        Tile(0, 0, 255),
        Tile(1, 0, 1),
        Tile(0, 1, 44),
        Tile(1, 0, 2),
        Tile(0, 2, 1),
        Tile(2, 0, 1),
        Tile(0, 256, 4),
    }
    assert new_bundles(256, 300) == [EntryBundle(1, 44)]
    assert new_bundles(300, 513) == [EntryBundle(1), EntryBundle(2, 1)]
    assert new_bundles(300, 300) == []
    with pytest.raises(InvalidRequest, match="cannot grow"):
        new_tiles(5, 4)


def test_tile_contents_are_the_hashes_of_full_subtrees() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(600)]
    memory = MemoryHashes(leaves)
    level0 = tile_data(Tile(0, 1), memory)
    assert level0 == b"".join(leaves[256:512])
    level1 = tile_hashes(Tile(1, 0, 2), tile_data(Tile(1, 0, 2), memory))
    assert level1 == [root_hash(leaves[:256]), root_hash(leaves[256:512])]
    partial = tile_data(Tile(0, 2, 88), memory)
    assert partial == b"".join(leaves[512:600])
    with pytest.raises(LogVerificationFailed, match="not 2 hashes"):
        tile_hashes(Tile(1, 0, 2), level1[0])


def test_proofs_read_from_tiles_are_the_proofs_read_from_memory(tmp_path: Path) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(700)]
    memory = MemoryHashes(leaves)
    for size in (1, 255, 256, 257, 511, 512, 700):
        for tile in tiles_for_size(size):
            write(tmp_path, tile.path, tile_data(tile, memory))
    tiles = DirectoryTiles(tmp_path)
    for size in (1, 255, 256, 257, 511, 512, 700):
        reader = TileHashes(size, tiles)
        assert tree_hash(size, reader) == root_hash(leaves[:size])
        for index in {0, size // 3, size - 1}:
            assert inclusion_proof(index, size, reader) == inclusion_proof(index, size, memory)
        for old in {1, size // 2 or 1, size - 1 or 1}:
            assert consistency_proof(old, size, reader) == consistency_proof(old, size, memory)


def test_a_tile_of_the_wrong_length_does_not_verify(tmp_path: Path) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(10)]
    write(tmp_path, "tile/0/000.p/10", b"".join(leaves[:9]))
    with pytest.raises(LogVerificationFailed, match="not 10 hashes"):
        inclusion_proof(3, 10, TileHashes(10, DirectoryTiles(tmp_path)))
    with pytest.raises(InvalidRequest, match="no complete subtree"):
        TileHashes(10, DirectoryTiles(tmp_path)).read_hashes([Node(1, 5)])


def test_entry_bundles() -> None:
    entries = [b"first", b"", b"x" * 300]
    data = encode_bundle(entries)
    assert data == b"\x00\x05first\x00\x00\x01\x2c" + b"x" * 300
    assert decode_bundle(EntryBundle(0, 3), data) == entries
    with pytest.raises(LogVerificationFailed, match="3 entries, not 4"):
        decode_bundle(EntryBundle(0, 4), data)
    with pytest.raises(LogVerificationFailed, match="inside an entry"):
        decode_bundle(EntryBundle(0, 3), data[:-1])
    with pytest.raises(LogVerificationFailed, match="inside an entry length"):
        decode_bundle(EntryBundle(0, 4), data + b"\x00")
    assert encode_bundle([b"y" * 0xFFFF])[:2] == b"\xff\xff"
    with pytest.raises(InvalidRequest, match="at most 65535"):
        encode_bundle([b"y" * 0x10000])
