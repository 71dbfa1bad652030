"""A log for the auditor's tests, built with the library and served as static files on
loopback, as ``federation publish`` lays it out: ``/log/checkpoint``, ``/log/tile/...``
and the discovery document naming the log's key. Each :meth:`StaticLog.publish`
replaces what is served, so a test can grow the log, or have its operator rewrite it
and sign the result with the log's own key."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from federation.stand_ins.serving import serve
from federation.transparency import Ed25519NoteSigner
from tests.transparency.logs import ORIGIN, log_key, publish

KEY = log_key()


@dataclass
class StaticLog:
    """A directory served at ``url`` holding one published log at a time."""

    root: Path
    url: str

    @property
    def directory(self) -> Path:
        return self.root / "log"

    def publish(self, entries: Sequence[bytes], size: int, key: Ed25519NoteSigner = KEY) -> str:
        """Serves the first ``size`` of ``entries`` (every tile and bundle of that size,
        nothing of another) under a checkpoint signed by ``key``; returns it."""
        shutil.rmtree(self.directory, ignore_errors=True)
        published = publish(self.directory, list(entries[:size]), [size], key)
        self.serve_checkpoint(published.checkpoints[-1])
        return published.checkpoints[-1]

    def serve_checkpoint(self, signed: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "checkpoint").write_text(signed, encoding="utf-8")

    def announce(self, verifier_key: str, origin: str = ORIGIN) -> None:
        """The discovery document, naming the log and its key."""
        document = {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks.json",
            "transparency_log": {
                "url": f"{self.url}/log/",
                "origin": origin,
                "verifier_key": verifier_key,
            },
        }
        well_known = self.root / ".well-known"
        well_known.mkdir(parents=True, exist_ok=True)
        (well_known / "openid-configuration").write_text(json.dumps(document))


@contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """``root`` as static files on a loopback port, until the block ends (the server
    stops with a deadline, whatever happens in it)."""
    root.mkdir(parents=True, exist_ok=True)
    app = Starlette(routes=[Mount("/", app=StaticFiles(directory=root))])
    with serve(app) as url:
        yield url


def tree_hash(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1's MTH over the entries ``leaves``, written from the RFC alone
    (not the library's code), to check what the monitor keeps."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    if not leaves:
        return hashlib.sha256(b"").digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + tree_hash(leaves[:k]) + tree_hash(leaves[k:])).digest()


def right_edge(leaves: Sequence[bytes]) -> list[bytes]:
    """The MTH of each of the largest complete subtrees of ``leaves``, left to right."""
    edge, start = [], 0
    for bit in reversed(range(len(leaves).bit_length())):
        if len(leaves) & (1 << bit):
            edge.append(tree_hash(leaves[start : start + (1 << bit)]))
            start += 1 << bit
    return edge
