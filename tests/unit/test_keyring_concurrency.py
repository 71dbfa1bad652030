"""Processes starting together on one keys directory create one key per algorithm."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

from federation.clock import ManualClock
from federation.keys import FileKeyStore, Keyring


def test_concurrent_first_starts_create_one_key_per_algorithm(
    tmp_path: Path, clock: ManualClock
) -> None:
    directory = tmp_path / "keys"
    barrier = threading.Barrier(4)
    created: list[int] = []

    def start() -> None:
        keyring = Keyring(
            FileKeyStore(directory),
            clock,
            verification_window=timedelta(hours=3),
            lead_time=timedelta(hours=1),
        )
        barrier.wait()
        created.append(len(keyring.ensure()))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    manifest = json.loads((directory / "keyring.json").read_text())
    assert sorted(entry["alg"] for entry in manifest["keys"]) == ["ES256", "RS256"]
    assert sum(created) == 2
    assert sorted(path.name for path in directory.glob("*.pem")) == sorted(
        f"{entry['kid']}.pem" for entry in manifest["keys"]
    )
