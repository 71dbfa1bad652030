"""What a monitor remembers between runs: the log it watches and the last tree it
verified, in a small JSON file.

The state holds the log's pinned note verifier key, the last signed checkpoint the
monitor verified (kept whole: with a later checkpoint that contradicts it, it is
evidence that the log forked, signed by the log's own key), that tree's size and root,
and its right edge (a :class:`~federation.transparency.merkle.Frontier`: one hash per
bit set in the size), from which the next run folds the new entries onto the old tree.
For example::

    {
      "format": "federation-log-monitor/1",
      "origin": "issuer.example.com/log",
      "verifier_key": "issuer.example.com/log+1a2b3c4d+AaBb...",
      "size": 1234,
      "root": "Fb8sRQ6/wn6A0nnkpR+8sXTqiNbD8qv4N07sh4zoyMU=",
      "frontier": ["...", "...", "..."],
      "checkpoint": "issuer.example.com/log\\n1234\\n...\\n\\n— issuer.example.com/log ...\\n"
    }

Loading checks that the parts agree (the checkpoint verifies with the key, its size
and root are the ones recorded, the edge hashes to the root), so a damaged file stops
the monitor rather than vouching for a tree it never saw. Saving replaces the file
atomically: a run that fails half-way leaves the previous state.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation._internal.files import replace_private
from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency.checkpoints import Checkpoint, open_checkpoint
from federation.transparency.merkle import HASH_SIZE, Frontier
from federation.transparency.notes import parse_verifier_key

FORMAT = "federation-log-monitor/1"
MAX_STATE = 1024 * 1024


@dataclass(frozen=True)
class MonitorState:
    """The last tree a monitor verified, and the key it verified it with."""

    verifier_key: str
    checkpoint: str  # the signed note
    head: Checkpoint
    edge: tuple[bytes, ...]  # the Frontier's hashes

    @property
    def origin(self) -> str:
        return self.head.origin

    @property
    def frontier(self) -> Frontier:
        """The tree's right edge, a fresh copy to fold new entries onto."""
        return Frontier(self.head.size, self.edge)

    @classmethod
    def of(cls, verifier_key: str, checkpoint: str, frontier: Frontier) -> MonitorState:
        """The state after verifying the signed ``checkpoint`` (whose edge is
        ``frontier``) with ``verifier_key``."""
        return cls._checked(verifier_key, checkpoint, frontier.size, frontier.root, frontier)

    @classmethod
    def load(cls, path: Path) -> MonitorState | None:
        """The state in ``path``; None when there is no file yet (a first run);
        :class:`InvalidRequest` naming the file when it is not a monitor's state."""
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_STATE + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InvalidRequest(f"cannot read the state file {path}: {exc.strerror}") from None
        try:
            if len(data) > MAX_STATE:
                raise InvalidRequest(f"larger than {MAX_STATE} bytes")
            return cls.from_json(data)
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"the state file {path} is not a log monitor's state ({exc.detail}); move "
                "it away to start over"
            ) from None

    @classmethod
    def from_json(cls, data: bytes) -> MonitorState:
        try:
            document = json.loads(data)
        except ValueError:
            raise InvalidRequest("not JSON") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise InvalidRequest(f"not a JSON object of format {FORMAT}")
        key, checkpoint = document.get("verifier_key"), document.get("checkpoint")
        size, root, edge = document.get("size"), document.get("root"), document.get("frontier")
        if not (isinstance(key, str) and isinstance(checkpoint, str)):
            raise InvalidRequest("no verifier_key and checkpoint strings")
        if type(size) is not int or not isinstance(edge, list):
            raise InvalidRequest("no size number and frontier list")
        hashes = [_hash(value) for value in edge]
        try:
            frontier = Frontier(size, hashes)
        except InvalidRequest:
            raise InvalidRequest(f"a frontier of {len(hashes)} hashes for {size} entries") from None
        return cls._checked(key, checkpoint, size, _hash(root), frontier)

    @classmethod
    def _checked(
        cls, verifier_key: str, checkpoint: str, size: int, root: bytes, frontier: Frontier
    ) -> MonitorState:
        verifier = parse_verifier_key(verifier_key)
        try:
            head = open_checkpoint(checkpoint, [verifier])
        except LogVerificationFailed as exc:
            raise InvalidRequest(f"its checkpoint does not verify: {exc.detail}") from None
        if (head.size, head.root) != (size, root):
            raise InvalidRequest("its size and root are not its checkpoint's")
        if frontier.size != size or frontier.root != root:
            raise InvalidRequest("its frontier does not hash to its root")
        return cls(verifier_key, checkpoint, head, tuple(frontier.hashes))

    def to_json(self) -> bytes:
        document: dict[str, Any] = {
            "format": FORMAT,
            "origin": self.head.origin,
            "verifier_key": self.verifier_key,
            "size": self.head.size,
            "root": _b64(self.head.root),
            "frontier": [_b64(value) for value in self.edge],
            "checkpoint": self.checkpoint,
        }
        return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"

    def save(self, path: Path) -> None:
        """Replaces ``path`` with this state, atomically (0600; its directory is left
        as it is)."""
        replace_private(path, self.to_json(), own_directory=False)


def _hash(value: object) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != HASH_SIZE:
        raise InvalidRequest(f"a hash is {HASH_SIZE} bytes in base64")
    return raw


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")
