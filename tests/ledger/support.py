"""Helpers of the transparency log's tests: an auditor's key, the log the discovery
document names, the served checkpoint once it covers a size, and the tiles and entry
bundles as the server serves them (over the application in this process or a live
server: both are ``httpx.Client``)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from federation.transparency import (
    Checkpoint,
    EntryBundle,
    Tile,
    bundles_for_size,
    tiles_for_size,
)
from tests.support import World, bearer

# The application in this process, or a live server.
Client = httpx.Client | TestClient
CHECKPOINT_WITHIN = 10.0  # seconds: checkpoints are signed twice a second


def auditor(world: World[Any]) -> dict[str, str]:
    """The headers of a service account's key with the ``audit`` scope."""
    world.principal("auditor", type="service_account", email=None)
    return bearer(world.api_key("auditor", scopes=("audit",)))


def discovered(client: Client) -> dict[str, str]:
    """The ``transparency_log`` member of the discovery document."""
    found: dict[str, str] = client.get("/.well-known/openid-configuration").json()[
        "transparency_log"
    ]
    return found


def served_checkpoint(client: Client, headers: dict[str, str]) -> tuple[str, Checkpoint]:
    """The served signed checkpoint, and the checkpoint it signs (unverified)."""
    response = client.get("/log/checkpoint", headers=headers)
    assert response.status_code == 200, response.text
    return response.text, Checkpoint.parse(response.text.split("\n\n")[0] + "\n")


def checkpoint_of(
    client: Client, headers: dict[str, str], size: int, within: float = CHECKPOINT_WITHIN
) -> str:
    """The served checkpoint once it covers ``size`` entries (signed twice a second)."""
    deadline = time.monotonic() + within
    while True:
        note, checkpoint = served_checkpoint(client, headers)
        if checkpoint.size >= size:
            return note
        assert time.monotonic() < deadline, f"no checkpoint of {size} entries in {within} s"
        time.sleep(0.05)


def b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(value) for value in values]


def download(client: Client, headers: dict[str, str], size: int, into: Path) -> None:
    """Every tile and entry bundle of the tree of ``size``, as the server serves them."""
    items: list[Tile | EntryBundle] = [*tiles_for_size(size), *bundles_for_size(size)]
    for item in items:
        response = client.get(f"/log/{item.path}", headers=headers)
        assert response.status_code == 200, (item.path, response.text)
        assert response.headers["content-type"] == "application/octet-stream"
        target = into / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(response.content)
