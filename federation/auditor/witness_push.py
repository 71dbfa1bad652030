"""Pushing a log's newest checkpoint to a C2SP ``tlog-witness``, as a log or a feeder
does: read the checkpoint, prove its consistency from the size the witness last
cosigned, and collect the witness's cosignature.

The client does not need to remember what the witness saw: it offers the size it
believes (0 at first), and a witness that has another answers ``409`` with its size
(``text/x.tlog.size``), from which the client asks the log for a consistency proof and
tries again. A witness that has cosigned a larger tree than the log now shows is a
warning sign (the log went back, or showed the witness another tree), reported as
:class:`~federation.errors.LogVerificationFailed`, as is a witness that finds the
checkpoint inconsistent (``422``).

The checkpoint is not verified here (the witness does that, with the log's key it
pinned); the cosignature is, when the witness's key is given.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from federation import __version__
from federation.errors import (
    Conflict,
    FederationError,
    InvalidRequest,
    LogVerificationFailed,
    NotAuthorized,
    ResourceNotFound,
    ResourceUnavailable,
)
from federation.transparency.checkpoints import Checkpoint
from federation.transparency.cosignatures import Cosignature, require_cosignature
from federation.transparency.notes import NoteVerifier, open_note

SIZE_TYPE = "text/x.tlog.size"
MAX_ANSWER = 64 * 1024  # a hundred signature lines fit many times
_SIZE = re.compile(r"(0|[1-9][0-9]{0,18})\n")


class CheckpointSource(Protocol):
    """Where the checkpoint and its proofs come from: the issuer
    (:class:`~federation.auditor.remote.RemoteLog`), or a log in this process."""

    def checkpoint(self) -> str:
        """The log's newest signed checkpoint."""
        ...

    def consistency(self, old_size: int, new_size: int) -> Sequence[bytes]:
        """The proof that the tree of ``new_size`` entries extends the one of
        ``old_size``."""
        ...


@dataclass(frozen=True)
class Pushed:
    """A checkpoint a witness cosigned: the checkpoint, the signed note with the
    witness's signature lines added, and the cosignature when its key was given."""

    checkpoint: Checkpoint
    note: str
    cosignature: Cosignature | None


class WitnessClient:
    """``POST <url>/add-checkpoint`` to one witness."""

    def __init__(
        self, url: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 10.0
    ) -> None:
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise InvalidRequest(f"the witness URL {url!r} is not an http(s) URL")
        headers = {"User-Agent": f"federation-cli/{__version__}"}
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> WitnessClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], note: str) -> str | int:
        """The witness's signature lines, or (409) the size it last cosigned; the
        project's errors for a refusal (see the module docstring)."""
        head = f"old {old_size}\n" + "".join(
            base64.b64encode(h).decode("ascii") + "\n" for h in proof
        )
        body = (head + "\n" + note).encode("utf-8")
        url = f"{self.url}/add-checkpoint"
        try:
            with self._client.stream("POST", url, content=body) as response:
                status, answer = response.status_code, _read(response)
                content_type = response.headers.get("content-type", "")
        except httpx.TimeoutException:
            raise ResourceUnavailable(f"the witness at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ResourceUnavailable(
                f"cannot reach the witness at {self.url}: {type(exc).__name__}"
            ) from None
        if status == 200:
            return answer.decode("utf-8", "replace")
        if status == 409:
            size = _SIZE.fullmatch(answer.decode("ascii", "replace"))
            if not content_type.startswith(SIZE_TYPE) or size is None:
                raise InvalidRequest(f"the witness at {self.url} answered 409 without its size")
            return int(size[1])
        raise self._refusal(status, answer)

    def _refusal(self, status: int, answer: bytes) -> FederationError:
        said = _detail(answer)
        where = f"the witness at {self.url}"
        if status == 404:
            return ResourceNotFound(
                f"{where} does not know the log (start it with `--log` and the log's "
                f"verifier key){said}"
            )
        if status == 403:
            return NotAuthorized(
                f"{where} did not accept the log's signature on the checkpoint (does it pin "
                f"the log's current key?){said}"
            )
        if status == 422:
            return LogVerificationFailed(
                f"{where} found the checkpoint inconsistent with the last one it cosigned: "
                f"the log was forked or rewritten{said}"
            )
        if 400 <= status < 500:
            return InvalidRequest(f"{where} refused the request: HTTP {status}{said}")
        return ResourceUnavailable(f"{where} answered HTTP {status}{said}")


def push_checkpoint(
    log: CheckpointSource,
    witness: WitnessClient,
    *,
    witness_key: NoteVerifier | None = None,
    old_size: int = 0,
    attempts: int = 3,
) -> Pushed:
    """Has ``witness`` cosign ``log``'s newest checkpoint, proving consistency from the
    size it last cosigned (``old_size`` first: a guess, corrected by its 409 answer).
    With ``witness_key``, the cosignature is verified."""
    old, checkpoint = old_size, None
    for _ in range(attempts):
        note = log.checkpoint()
        checkpoint = _unverified(note)
        if old > checkpoint.size:
            continue  # a newer checkpoint may have come meanwhile: read it again
        proof = log.consistency(old, checkpoint.size) if 0 < old < checkpoint.size else ()
        answer = witness.add_checkpoint(old, proof, note)
        if isinstance(answer, int):
            old = answer
            continue
        return Pushed(checkpoint, note + answer, _cosignature(note, answer, witness_key))
    if checkpoint is not None and old > checkpoint.size:
        raise LogVerificationFailed(
            f"the witness at {witness.url} has cosigned {old} entries of {checkpoint.origin}, "
            f"more than the log's newest checkpoint holds ({checkpoint.size}): the log went "
            "back, or showed the witness another tree"
        )
    raise Conflict(f"the witness at {witness.url} kept changing its size; try again")


def _unverified(note: str) -> Checkpoint:
    """The checkpoint in ``note``, its signatures not checked (the witness checks them)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise LogVerificationFailed("the log's checkpoint is not a signed note")
    return Checkpoint.parse(note[: split + 1])


def _cosignature(note: str, answer: str, witness_key: NoteVerifier | None) -> Cosignature | None:
    lines = answer.split("\n")
    if not answer.endswith("\n") or not all(line.startswith("\u2014 ") for line in lines[:-1]):
        raise LogVerificationFailed("the witness answered something other than signature lines")
    if witness_key is None:
        return None
    try:
        return require_cosignature(open_note(note + answer, [witness_key]), witness_key)
    except LogVerificationFailed as exc:
        raise LogVerificationFailed(
            f"the witness answered no valid cosignature by {witness_key.name} ({exc.detail})"
        ) from None


def _read(response: httpx.Response) -> bytes:
    chunks, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > MAX_ANSWER:
            raise InvalidRequest(f"the witness answered more than {MAX_ANSWER} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _detail(answer: bytes) -> str:
    """``: <what the witness said>``, from a problem body or the first line of text."""
    text = answer.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("detail"), str):
        text = document["detail"]
    line = text.strip().split("\n", 1)[0][:300]
    return f": {line}" if line else ""
