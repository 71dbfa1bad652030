"""The monitor's state file: written whole, read back only when its parts agree (the
checkpoint verifies with the key, its size and root are the ones kept, the edge hashes
to the root), so that a damaged file stops the monitor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federation.auditor.state import MonitorState
from federation.errors import InvalidRequest
from federation.transparency import Checkpoint, Frontier, leaf_hash, sign_checkpoint
from tests.auditor.logs import KEY, tree_hash
from tests.transparency.logs import ORIGIN, log_key, sample_entries

ENTRIES = sample_entries(13)


def honest_state() -> MonitorState:
    frontier = Frontier()
    frontier.extend(leaf_hash(entry) for entry in ENTRIES)
    signed = sign_checkpoint(Checkpoint(ORIGIN, 13, frontier.root), KEY)
    return MonitorState.of(KEY.verifier.verifier_key, signed, frontier)


def test_a_state_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = honest_state()

    state.save(path)
    loaded = MonitorState.load(path)

    assert loaded == state
    assert loaded is not None
    assert loaded.head.root == tree_hash(ENTRIES)
    assert MonitorState.load(tmp_path / "missing.json") is None


def edited(**changes: Any) -> bytes:
    document = json.loads(honest_state().to_json())
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (edited(format="v2"), "not a JSON object of format"),
        (edited(size=12), "a frontier of 3 hashes for 12 entries"),
        (edited(size=14), "its size and root are not its checkpoint's"),
        (edited(root="AAAA"), "a hash is 32 bytes"),
        (edited(frontier=json.loads(edited(size=8))["frontier"][:1]), "a frontier of 1 hashes"),
        (edited(verifier_key=log_key(seed="other").verifier.verifier_key), "does not verify"),
        (edited(verifier_key="nonsense"), "note verifier key"),
    ],
)
def test_a_state_whose_parts_disagree_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        MonitorState.from_json(data)


def test_an_edge_that_does_not_hash_to_the_root_is_refused() -> None:
    document = json.loads(honest_state().to_json())
    document["frontier"] = list(reversed(document["frontier"]))

    with pytest.raises(InvalidRequest, match="its frontier does not hash to its root"):
        MonitorState.from_json(json.dumps(document).encode())


def test_a_damaged_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{}")

    with pytest.raises(InvalidRequest, match=f"the state file {path} is not .* move it away"):
        MonitorState.load(path)
