"""The log, verified by code we did not write: Go's golang.org/x/mod/sumdb/note opens
our signed checkpoints with our verifier key string, sumdb/tlog authenticates our tiles
against their roots, and our inclusion and consistency proofs pass tlog.CheckRecord and
tlog.CheckTree and equal what tlog.ProveRecord and tlog.ProveTree compute, at every tree
size from 1 to 520 (and some up to 1000) and in a tree with three tile levels. The last
tests show the verifier is not a rubber stamp: it reports what was tampered with."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from federation.transparency import (
    Checkpoint,
    TileHashes,
    consistency_proof,
    encode_bundle,
    inclusion_proof,
    sign_checkpoint,
)
from tests.transparency import golang
from tests.transparency.logs import (
    ORIGIN,
    DirectoryTiles,
    PublishedLog,
    log_key,
    publish,
    sample_entries,
    sample_entry,
    write,
)

KEY = log_key()


def request(log: PublishedLog, inclusion: list[Any], consistency: list[Any]) -> dict[str, Any]:
    return {
        "verifier_key": KEY.verifier.verifier_key,
        "key_name": KEY.name,
        "public_key": KEY.verifier.public_key,
        "checkpoints": log.checkpoints,
        "inclusion": inclusion,
        "consistency": consistency,
    }


def proofs(
    log: PublishedLog, indexes_at: dict[int, set[int]], olds_at: dict[int, set[int]]
) -> tuple[list[Any], list[Any]]:
    """Our proofs, computed from the published tiles (not from memory): inclusion of
    each index in ``indexes_at[position]`` and consistency from each checkpoint position
    in ``olds_at[position]``, for the checkpoint at that position."""
    tiles = DirectoryTiles(log.directory)
    inclusion, consistency = [], []
    for position, size in enumerate(log.sizes):
        reader = TileHashes(size, tiles)
        for index in sorted(indexes_at.get(position, ())):
            proof = inclusion_proof(index, size, reader)
            inclusion.append({"checkpoint": position, "index": index, "proof": proof})
        for old in sorted(olds_at.get(position, ())):
            proof = consistency_proof(log.sizes[old], size, reader)
            consistency.append({"old": old, "new": position, "proof": proof})
    return inclusion, consistency


@pytest.mark.slow
def test_go_verifies_every_size_up_to_two_tiles_and_more(tmp_path: Path, go_verifier: Path) -> None:
    # A checkpoint at every size up to two full tiles and past them, as a log signing
    # often does: every partial tile and bundle width of level 0 appears, twice, and
    # level 1's partial tiles of widths 1 to 3 (the last from 768 leaves on).
    sizes = [*range(1, 521), 767, 768, 769, 1000]
    log = publish(tmp_path, sample_entries(1000), sizes, KEY)
    rng = random.Random(18)  # noqa: S311 - which proofs to check, not a secret
    indexes_at: dict[int, set[int]] = {}
    olds_at: dict[int, set[int]] = {}
    for position, size in enumerate(sizes):
        indexes_at[position] = {0, size - 1, rng.randrange(size)}
        # from the checkpoints of size 1, size - 1, the same size, and a random one
        olds_at[position] = {0, max(position - 1, 0), position, rng.randrange(position + 1)}
    inclusion, consistency = proofs(log, indexes_at, olds_at)

    report = golang.verify(go_verifier, tmp_path, request(log, inclusion, consistency))

    assert report.failures == []
    assert report.checkpoints == len(sizes)
    assert report.entries == sum(sizes)  # every entry of every tree hashed to its leaf
    assert report.inclusion == len(inclusion) > 1300
    assert report.consistency == len(consistency) > 1500


@pytest.mark.slow
def test_go_verifies_a_tree_with_three_tile_levels(tmp_path: Path, go_verifier: Path) -> None:
    # The tile specification's own example (70,000 leaves: full and partial tiles at
    # levels 0 and 1, a partial tile at level 2), and the sizes around 256 and 65,536.
    sizes = [1, 255, 256, 257, 65_535, 65_536, 65_537, 70_000]
    log = publish(tmp_path, sample_entries(70_000), sizes, KEY)
    edges = {0, 1, 254, 255, 256, 257, 65_535, 65_536, 69_999}
    indexes_at = {p: {i for i in edges if i < size} for p, size in enumerate(sizes)}
    olds_at = {p: set(range(p + 1)) for p in range(len(sizes))}
    inclusion, consistency = proofs(log, indexes_at, olds_at)

    report = golang.verify(go_verifier, tmp_path, request(log, inclusion, consistency))

    assert report.failures == []
    assert report.checkpoints == len(sizes)
    assert report.inclusion == len(inclusion) == sum(map(len, indexes_at.values()))
    assert report.consistency == len(consistency) == 36


def test_go_verifies_the_empty_log(tmp_path: Path, go_verifier: Path) -> None:
    log = publish(tmp_path, [], [0], KEY)
    report = golang.verify(go_verifier, tmp_path, request(log, [], []))
    assert (report.failures, report.checkpoints) == ([], 1)


@pytest.fixture
def small_log(tmp_path: Path) -> PublishedLog:
    return publish(tmp_path, sample_entries(300), [100, 300], KEY)


def test_go_reports_a_rewritten_entry(small_log: PublishedLog, go_verifier: Path) -> None:
    entries = list(small_log.entries)
    entries[42] = sample_entry(42, subject="repo:attacker/repo:ref:main").encode()
    write(small_log.directory, "tile/entries/000.p/100", encode_bundle(entries[:100]))
    write(small_log.directory, "tile/entries/000", encode_bundle(entries[:256]))
    report = golang.verify(go_verifier, small_log.directory, request(small_log, [], []))
    assert report.checkpoints == 0
    assert report.failures == [
        f"checkpoint {i} (size {size}): entry 42 does not hash to its leaf in the tiles"
        for i, size in enumerate(small_log.sizes)
    ]


def test_go_reports_a_forked_checkpoint(small_log: PublishedLog, go_verifier: Path) -> None:
    # The log's key signs a second head of size 300 over other entries: a fork.
    fork = publish(small_log.directory / "fork", sample_entries(301)[1:], [300], KEY)
    body = request(small_log, [], [{"old": 1, "new": 2, "proof": []}])
    body["checkpoints"] = [*small_log.checkpoints, fork.checkpoints[0]]
    report = golang.verify(go_verifier, small_log.directory, body)
    assert report.failures == [
        "checkpoint 2 (size 300): tlog.TreeHash over the tiles: downloaded inconsistent tile",
        "consistency 0 (size 300 to 300): tlog.CheckTree: invalid transparency proof",
    ]
    # The same request with the log's own head twice verifies.
    body["checkpoints"] = [*small_log.checkpoints, small_log.checkpoints[1]]
    assert golang.verify(go_verifier, small_log.directory, body).failures == []


def test_go_reports_forged_signatures_and_proofs(
    small_log: PublishedLog, go_verifier: Path
) -> None:
    inclusion, consistency = proofs(small_log, {1: {7}}, {1: {0}})
    bad_inclusion = [*inclusion[0]["proof"]]
    bad_inclusion[0] = bytes([bad_inclusion[0][0] ^ 1]) + bad_inclusion[0][1:]
    bad_consistency = consistency[0]["proof"][:-1]
    impostor = log_key(seed="not the log's key")  # same name, another key
    forged = sign_checkpoint(Checkpoint(ORIGIN, 100, b"\x00" * 32), impostor)
    body = request(
        small_log,
        [*inclusion, {"checkpoint": 1, "index": 7, "proof": bad_inclusion}],
        [*consistency, {"old": 0, "new": 1, "proof": bad_consistency}],
    )
    body["checkpoints"] = [*small_log.checkpoints, forged]
    report = golang.verify(go_verifier, small_log.directory, body)
    assert report.checkpoints == 2
    assert (report.inclusion, report.consistency) == (1, 1)  # the honest ones
    assert sorted(report.failures) == [
        "checkpoint 2: note.Open: note has no verifiable signatures",
        "consistency 1 (size 100 to 300): tlog.CheckTree: invalid transparency proof",
        "inclusion 1 (leaf 7, size 300): tlog.CheckRecord: invalid transparency proof",
    ]


def test_go_reports_a_verifier_key_it_would_write_otherwise(
    small_log: PublishedLog, go_verifier: Path
) -> None:
    body = request(small_log, [], [])
    body["key_name"] = "another.example.test/log"
    report = golang.verify(go_verifier, small_log.directory, body)
    assert len(report.failures) == 1
    assert "Go writes" in report.failures[0]
