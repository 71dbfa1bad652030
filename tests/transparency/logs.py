"""Sample logs for the transparency tests: entries, a log key, and a log published as
static files the way a tiled log serves them (a checkpoint per size, the tiles and
entry bundles each one needs), plus a tile reader over such a directory."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.transparency import (
    Checkpoint,
    Ed25519NoteSigner,
    LogEntry,
    MemoryHashes,
    Tile,
    encode_bundle,
    leaf_hash,
    new_bundles,
    new_tiles,
    sign_checkpoint,
    tile_data,
    token_sha256,
    tree_hash,
)

ORIGIN = "issuer.example.test/log"
# Subjects with what the encoding must leave alone (non-ASCII, &, <) and what it must
# escape (a quote, a backslash), so that Go's encoding/json checks both.
SUBJECTS = (
    "repo:acme/deploy:ref:refs/heads/main",
    "équipe:ops/日本語:run",
    'job:"quoted" & <angled>',
    "path:C:\\builds\\nightly",
)


def log_key(name: str = ORIGIN, seed: str = "log key") -> Ed25519NoteSigner:
    """A note key derived from ``seed``, the same in every run."""
    secret = hashlib.sha256(seed.encode()).digest()
    return Ed25519NoteSigner(name, Ed25519PrivateKey.from_private_bytes(secret))


def sample_entry(index: int, *, subject: str | None = None) -> LogEntry:
    """The ``index``-th token of a made-up issuer, its fields varied by index."""
    jti = hashlib.sha256(f"jti {index}".encode()).hexdigest()[:24]
    return LogEntry(
        jti=jti,
        iss="https://issuer.example.test",
        sub=subject or SUBJECTS[index % len(SUBJECTS)],
        aud=("sts.amazonaws.com", "api://AzureADTokenExchange", "//iam.googleapis.com/x")[
            index % 3
        ],
        iat=1_790_000_000 + index,
        exp=1_790_000_900 + index,
        kid=f"key-{index // 100}",
        alg="ES256" if index % 2 else "RS256",
        run_id=f"run-{index // 7:05d}",
        principal=f"principal-{index % 5}",
        team=None if index % 3 == 0 else f"team-{index % 4}",
        token_sha256=token_sha256(f"header.payload-{index}.signature"),
    )


def sample_entries(count: int) -> list[bytes]:
    return [sample_entry(i).encode() for i in range(count)]


@dataclass
class PublishedLog:
    """A log published to ``directory``: its entries, and one signed checkpoint (in
    ``checkpoints``) per size in ``sizes``."""

    directory: Path
    entries: list[bytes]
    sizes: list[int]
    checkpoints: list[str]
    hashes: MemoryHashes


def publish(
    directory: Path, entries: Sequence[bytes], sizes: Sequence[int], key: Ed25519NoteSigner
) -> PublishedLog:
    """Grows a log through ``sizes`` (ascending), writing at each size the tiles and
    bundles it adds, and signing its checkpoint."""
    hashes = MemoryHashes()
    checkpoints = []
    old = 0
    for size in sizes:
        for entry in entries[old:size]:
            hashes.append(leaf_hash(entry))
        for tile in new_tiles(old, size):
            write(directory, tile.path, tile_data(tile, hashes))
        for bundle in new_bundles(old, size):
            chunk = entries[bundle.start : bundle.start + bundle.width]
            write(directory, bundle.path, encode_bundle(chunk))
        head = Checkpoint(ORIGIN, size, tree_hash(size, hashes))
        checkpoints.append(sign_checkpoint(head, key))
        old = size
    return PublishedLog(directory, list(entries), list(sizes), checkpoints, hashes)


def write(directory: Path, path: str, data: bytes) -> None:
    target = directory / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


class DirectoryTiles:
    """A tile reader over a published directory (each file read once)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, bytes] = {}

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        return [self._read(tile.path) for tile in tiles]

    def _read(self, path: str) -> bytes:
        if path not in self._cache:
            self._cache[path] = (self.directory / path).read_bytes()
        return self._cache[path]


# ---- tampering: what whoever holds the log's database does to its entries ----------

TOKEN = 25  # the index of the entry of a token its holder keeps a proof for


def rewrite(entries: list[bytes]) -> list[bytes]:
    """Entry ``TOKEN`` now says another subject."""
    changed = list(entries)
    changed[TOKEN] = sample_entry(TOKEN, subject="repo:attacker/repo:ref:main").encode()
    return changed


def delete(entries: list[bytes]) -> list[bytes]:
    """Entry ``TOKEN`` gone, and one more issued since, so that the size does not fall."""
    return [*entries[:TOKEN], *entries[TOKEN + 1 :], sample_entry(len(entries)).encode()]


def swap(entries: list[bytes]) -> list[bytes]:
    """Entries 10 and ``TOKEN`` trade places."""
    swapped = list(entries)
    swapped[10], swapped[TOKEN] = swapped[TOKEN], swapped[10]
    return swapped
