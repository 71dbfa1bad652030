"""The log as static files, in the C2SP ``tlog-tiles`` layout.

Hash tiles live at ``tile/<L>/<N>[.p/<W>]``: the tile ``N`` of level ``L`` holds, for
``i`` below its width, the hash of the complete subtree of ``256**L`` leaves that starts
at leaf ``(N * 256 + i) * 256**L``; level 0 holds the leaf hashes. ``N`` is written in
groups of three digits, all but the last prefixed with ``x`` (1234067 is
``x001/x234/067``). A full tile holds 256 hashes (8,192 bytes) and never changes; the
rightmost tile of each level is partial (``.p/<W>``, ``W`` = ``floor(size / 256**L) mod
256``) and exists for the tree sizes a checkpoint was signed for.

Entry bundles live at ``tile/entries/<N>[.p/<W>]``: entries ``N * 256`` onwards, each as
a big-endian two-byte length followed by the entry's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from federation.errors import InternalError, InvalidRequest, LogVerificationFailed
from federation.transparency.merkle import HASH_SIZE, HashReader, Node, subtree_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF  # the two-byte length of an entry in a bundle
_PATH = re.compile(
    r"tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


@dataclass(frozen=True)
class Tile:
    """A hash tile: ``width`` hashes of level ``level``, tile number ``index``."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        _check(self.index, self.width)
        if not 0 <= self.level <= MAX_LEVEL:
            raise InvalidRequest(f"a tile level is 0 to {MAX_LEVEL}")

    @property
    def full(self) -> bool:
        """Whether the tile holds all 256 hashes: then it never changes again."""
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]``, relative to the log's prefix."""
        return f"tile/{self.level}/{_encode(self.index, self.width)}"

    @property
    def nodes(self) -> list[Node]:
        """The complete subtrees whose hashes the tile holds, in order."""
        first = self.index * TILE_WIDTH
        height = self.level * TILE_HEIGHT
        return [Node(height, first + i) for i in range(self.width)]


@dataclass(frozen=True)
class EntryBundle:
    """``width`` entries of the log, from entry ``index * 256``."""

    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        _check(self.index, self.width)

    @property
    def full(self) -> bool:
        """Whether the bundle holds all 256 entries: then it never changes again."""
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        """``tile/entries/<N>[.p/<W>]``, relative to the log's prefix."""
        return f"tile/entries/{_encode(self.index, self.width)}"

    @property
    def start(self) -> int:
        """The index of the bundle's first entry."""
        return self.index * TILE_WIDTH


def parse_path(path: str) -> Tile | EntryBundle:
    """The tile or entry bundle at ``path`` (relative to the log's prefix), written the
    one way this module writes it; :class:`InvalidRequest` for any other path."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise InvalidRequest("not a tile path")
    width = int(match["width"]) if match["width"] else TILE_WIDTH
    if match["width"] and width >= TILE_WIDTH:  # a full tile has no .p/ suffix
        raise InvalidRequest("not a tile path")
    index = int(match["index"].replace("x", "").replace("/", ""))
    level = match["level"]
    parsed = EntryBundle(index, width) if level == "entries" else Tile(int(level), index, width)
    if parsed.path != path:  # leading zero groups: one resource, one path
        raise InvalidRequest("not a tile path")
    return parsed


def tiles_for_size(size: int) -> list[Tile]:
    """Every tile of a tree of ``size`` leaves, level by level: the full ones and the
    partial one at the right edge of each level."""
    return new_tiles(0, size)


def new_tiles(old_size: int, new_size: int) -> list[Tile]:
    """The tiles to publish when the tree grows from ``old_size`` to ``new_size``: those
    that became full, and the partial tiles of the new size that did not exist."""
    _check_sizes(old_size, new_size)
    tiles = []
    level = 0
    while new_size >> (TILE_HEIGHT * level):
        old_count = old_size >> (TILE_HEIGHT * level)
        new_count = new_size >> (TILE_HEIGHT * level)
        for index in range(old_count // TILE_WIDTH, new_count // TILE_WIDTH):
            tiles.append(Tile(level, index))
        width = new_count % TILE_WIDTH
        if width and new_count != old_count:
            tiles.append(Tile(level, new_count // TILE_WIDTH, width))
        level += 1
    return tiles


def bundles_for_size(size: int) -> list[EntryBundle]:
    """Every entry bundle of a log of ``size`` entries."""
    return new_bundles(0, size)


def new_bundles(old_size: int, new_size: int) -> list[EntryBundle]:
    """The entry bundles to publish when the log grows from ``old_size`` entries to
    ``new_size``."""
    _check_sizes(old_size, new_size)
    bundles = [EntryBundle(i) for i in range(old_size // TILE_WIDTH, new_size // TILE_WIDTH)]
    if new_size % TILE_WIDTH and new_size != old_size:
        bundles.append(EntryBundle(new_size // TILE_WIDTH, new_size % TILE_WIDTH))
    return bundles


def tile_data(tile: Tile, reader: HashReader) -> bytes:
    """The bytes of ``tile``: its hashes, read from ``reader``, concatenated."""
    hashes = list(reader.read_hashes(tile.nodes))
    if len(hashes) != tile.width or any(len(h) != HASH_SIZE for h in hashes):
        raise InternalError(f"the hash reader did not answer the hashes of {tile.path}")
    return b"".join(hashes)


def tile_hashes(tile: Tile, data: bytes) -> list[bytes]:
    """The hashes in the bytes of ``tile``; :class:`LogVerificationFailed` when they
    are not exactly ``width`` hashes."""
    if len(data) != tile.width * HASH_SIZE:
        raise LogVerificationFailed(f"{tile.path} is {len(data)} bytes, not {tile.width} hashes")
    return _split_hashes(data)


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian two-byte length, then its bytes."""
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise InvalidRequest(f"a log entry is at most {MAX_ENTRY_SIZE} bytes")
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(entry)
    return b"".join(parts)


def decode_bundle(bundle: EntryBundle, data: bytes) -> list[bytes]:
    """The entries of ``bundle`` from its bytes; :class:`LogVerificationFailed` when
    they are not exactly ``width`` well-formed entries."""
    entries, position = [], 0
    while position < len(data):
        if position + 2 > len(data):
            raise LogVerificationFailed(f"{bundle.path} ends inside an entry length")
        end = position + 2 + int.from_bytes(data[position : position + 2], "big")
        if end > len(data):
            raise LogVerificationFailed(f"{bundle.path} ends inside an entry")
        entries.append(data[position + 2 : end])
        position = end
    if len(entries) != bundle.width:
        raise LogVerificationFailed(
            f"{bundle.path} holds {len(entries)} entries, not {bundle.width}"
        )
    return entries


class TileReader(Protocol):
    """Where :class:`TileHashes` reads tiles: a store, a directory, a server."""

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        """The bytes of each of ``tiles``, in their order."""
        ...


class TileHashes:
    """A hash reader over the tiles of the tree of ``size`` leaves: each complete
    subtree's hash comes from the tile that holds it, or is folded from the hashes
    below it inside that tile. Complete subtrees never change, so the reader of the
    latest tree answers the proofs of every earlier one too (whose partial tiles a log
    may have deleted). Nothing here authenticates the tiles: whoever checks a proof
    made from them checks it against a signed root."""

    def __init__(self, size: int, tiles: TileReader) -> None:
        if size < 0:
            raise InvalidRequest("a tree size cannot be negative")
        self.size = size
        self._tiles = tiles

    def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
        wanted: dict[Tile, int] = {}
        places = []
        for node in nodes:
            level, index = node.level, node.index
            tile_level, depth = divmod(level, TILE_HEIGHT)
            first = index << depth if level >= 0 else -1  # its first hash at the tile's level
            count = self.size >> (TILE_HEIGHT * tile_level) if first >= 0 else 0
            if first < 0 or first + (1 << depth) > count:
                raise InvalidRequest(f"no complete subtree {level}/{index} in {self.size} leaves")
            number = first // TILE_WIDTH
            tile = Tile(tile_level, number, min(TILE_WIDTH, count - number * TILE_WIDTH))
            slot = wanted.setdefault(tile, len(wanted))
            start = first % TILE_WIDTH
            places.append((slot, start, start + (1 << depth)))
        tiles = list(wanted)
        data = list(self._tiles.read_tiles(tiles))
        if len(data) != len(tiles):
            raise InternalError("the tile reader answered another number of tiles")
        for tile, raw in zip(tiles, data, strict=True):
            if len(raw) != tile.width * HASH_SIZE:
                raise LogVerificationFailed(f"{tile.path} is not {tile.width} hashes")
        return [
            subtree_hash(_split_hashes(data[slot][start * HASH_SIZE : end * HASH_SIZE]))
            for slot, start, end in places
        ]


def _split_hashes(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def _encode(index: int, width: int) -> str:
    groups = f"{index % 1000:03d}"
    index //= 1000
    while index:
        groups = f"x{index % 1000:03d}/{groups}"
        index //= 1000
    return groups if width == TILE_WIDTH else f"{groups}.p/{width}"


def _check(index: int, width: int) -> None:
    if index < 0:
        raise InvalidRequest("a tile number cannot be negative")
    if not 1 <= width <= TILE_WIDTH:
        raise InvalidRequest(f"a tile holds 1 to {TILE_WIDTH} hashes")


def _check_sizes(old_size: int, new_size: int) -> None:
    if not 0 <= old_size <= new_size:
        raise InvalidRequest(f"a log cannot grow from {old_size} entries to {new_size}")
