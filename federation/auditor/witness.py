"""A C2SP ``tlog-witness``: a party on another machine that cosigns a log's checkpoints
once it has checked that each extends the last one it cosigned, so that the log cannot
show one reader a tree and another reader a different one (a split view) without a
witness noticing.

``POST /add-checkpoint`` takes an ``old <size>`` line, the consistency proof's hashes
(base64, one a line, at most 63), a blank line, then the signed checkpoint. The witness
answers, as the specification asks:

- 404 when it does not know the checkpoint's origin (logs are pinned, origin and key);
- 403 when no signature of the log's key verifies, or one fails;
- 400 when the request is malformed, or the old size exceeds the checkpoint's;
- 409 with ``text/x.tlog.size`` (its size and a newline) when the old size is not the
  size it last cosigned for that log (0 when it never did): the client then proves
  consistency from that size;
- 422 when the checkpoint is inconsistent with the last one it cosigned: a proof that
  fails, the same size with another root, a size-0 tree with a root that is not the
  empty tree's. Such a checkpoint, signed by the log, is evidence: it is logged whole;
- 200 with its cosignature line(s) otherwise, after it recorded the checkpoint.

The check and the record are one step under a lock, and the record (the latest
checkpoint cosigned per origin) is a file written whole, 0600, before the answer, so
that a witness never cosigns a smaller tree after a larger one, even across restarts.
``GET /<hex SHA-256 of the origin>/checkpoint`` serves the latest cosigned checkpoint,
with the log's signatures and the witness's.

Other errors are ``application/problem+json`` with the project's error codes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from federation._internal import files, ports
from federation.auditor.witness_state import Recorded, WitnessState
from federation.clock import Clock
from federation.errors import (
    BY_STATUS,
    ConfigurationError,
    FederationError,
    InternalError,
    InvalidRequest,
    LogVerificationFailed,
    NotAuthorized,
    OperationNotSupported,
    RequestTooLarge,
    ResourceNotFound,
)
from federation.transparency.checkpoints import Checkpoint
from federation.transparency.cosignatures import (
    Ed25519CosignatureSigner,
    generate_witness_key,
    parse_witness_private_key,
)
from federation.transparency.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from federation.transparency.notes import (
    Note,
    NoteSignature,
    NoteVerifier,
    open_note,
    parse_verifier_key,
    sign_note,
)

logger = logging.getLogger(__name__)

SIZE_TYPE = "text/x.tlog.size"
MAX_PROOF = 63  # the specification's bound on consistency proof lines
MAX_BODY = 64 * 1024  # a checkpoint, 63 hashes and a hundred signatures fit many times
_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")
_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Submission:
    """A parsed ``add-checkpoint`` body: the size the client believes the witness has,
    the consistency proof from it, and the signed checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def parse_submission(body: bytes) -> Submission:
    """The ``add-checkpoint`` request in ``body``; :class:`InvalidRequest` when it is
    not one."""
    head, separator, note = body.partition(b"\n\n")
    if not separator:
        raise InvalidRequest("an add-checkpoint body is an old size line, proof, a blank line")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise InvalidRequest("an add-checkpoint body's first lines are ASCII") from None
    old = _OLD.fullmatch(lines[0])
    if old is None or int(old[1]) > 2**63 - 1:
        raise InvalidRequest("an add-checkpoint body starts with `old <size>`")
    if len(lines) - 1 > MAX_PROOF:
        raise InvalidRequest(f"a consistency proof has at most {MAX_PROOF} hashes")
    proof = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line, validate=True)
        except binascii.Error:
            value = b""
        if len(value) != HASH_SIZE:
            raise InvalidRequest("each consistency proof line is a base64 SHA-256 hash")
        proof.append(value)
    return Submission(int(old[1]), tuple(proof), note)


@dataclass(frozen=True)
class Cosigned:
    """A checkpoint the witness cosigned: its signature line(s), and the checkpoint as
    it now serves it."""

    lines: str
    record: Recorded


@dataclass(frozen=True)
class SizeMismatch:
    """The client's old size is not the witness's: ``size`` is the one it last
    cosigned for that log (answered 409)."""

    size: int


class Witness:
    """Checks checkpoints of the logs it knows and cosigns those that extend the last
    one it cosigned."""

    def __init__(
        self,
        signer: Ed25519CosignatureSigner,
        logs: Sequence[NoteVerifier],
        state: WitnessState,
    ) -> None:
        self.signer = signer
        self.state = state
        self._logs: dict[str, list[NoteVerifier]] = {}
        for key in logs:
            # NOTE: a log's key is named after its origin (tlog-checkpoint): pinning the
            # key pins the origin it may sign for.
            self._logs.setdefault(key.name, []).append(key)
        self._lock = threading.Lock()

    @property
    def origins(self) -> list[str]:
        return sorted(self._logs)

    def add_checkpoint(self, submission: Submission) -> Cosigned | SizeMismatch:
        """Checks ``submission`` and cosigns its checkpoint, or says which size to
        prove from; raises the error each refusal answers with (module docstring)."""
        origin = submission.note.split(b"\n", 1)[0].decode("utf-8", "replace")
        keys = self._logs.get(origin)
        if keys is None:
            raise ResourceNotFound(f"this witness does not know the log {origin[:200]!r}")
        try:
            note = open_note(submission.note, keys)
        except LogVerificationFailed as exc:
            raise NotAuthorized(f"the checkpoint of {origin}: {exc.detail}") from None
        try:
            checkpoint = Checkpoint.parse(note.text)
        except LogVerificationFailed as exc:
            raise InvalidRequest(exc.detail) from None
        if submission.old_size > checkpoint.size:
            raise InvalidRequest(
                f"old size {submission.old_size} exceeds the checkpoint's {checkpoint.size}"
            )
        with self._lock:
            recorded = self.state.get(origin)
            size, root = (recorded.size, recorded.root) if recorded else (0, EMPTY_ROOT)
            if submission.old_size != size:
                return SizeMismatch(size)
            if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
                self._inconsistent(checkpoint, size, "the empty tree has another hash", note)
            try:
                verify_consistency(size, checkpoint.size, root, checkpoint.root, submission.proof)
            except LogVerificationFailed as exc:
                self._inconsistent(checkpoint, size, exc.detail or "", note)
            cosignature = NoteSignature(
                self.signer.name, self.signer.key_id, self.signer.sign(note.text.encode("utf-8"))
            )
            record = Recorded(
                checkpoint.size,
                checkpoint.root,
                # NOTE: only the log signatures that verified, and this witness's own:
                # what a monitor may rely on.
                sign_note(note.text, keep=(*note.signatures, cosignature)),
            )
            self.state.put(origin, record)
        logger.info("cosigned %s at size %d", origin, checkpoint.size)
        return Cosigned(cosignature.line, record)

    def latest(self, origin_hash: str) -> Recorded | None:
        """The latest checkpoint cosigned for the log whose origin hashes (SHA-256, hex)
        to ``origin_hash``."""
        for origin in self.state.origins():
            if hashlib.sha256(origin.encode("utf-8")).hexdigest() == origin_hash:
                return self.state.get(origin)
        return None

    def _inconsistent(self, checkpoint: Checkpoint, size: int, reason: str, note: Note) -> NoReturn:
        # NOTE: a checkpoint the log signed that does not extend what it showed before is
        # proof that the log misbehaved: kept whole in the log, signatures included.
        signed = sign_note(note.text, keep=note.signatures)
        logger.warning(
            "refused a checkpoint of %s at size %d, inconsistent with size %d (%s):\n%s",
            checkpoint.origin,
            checkpoint.size,
            size,
            reason,
            signed,
        )
        raise OperationNotSupported(
            f"the checkpoint of {checkpoint.origin} at size {checkpoint.size} is not "
            f"consistent with the tree of size {size} this witness cosigned: {reason}"
        )


def parse_log_keys(texts: Sequence[str]) -> list[NoteVerifier]:
    """The logs' note verifier keys written ``<origin>+<key ID>+<base64 key>``;
    :class:`InvalidRequest` naming the first that is not one."""
    keys: list[NoteVerifier] = []
    for text in texts:
        try:
            keys.append(parse_verifier_key(text.strip()))
        except InvalidRequest as exc:
            raise InvalidRequest(f"the log key {text.strip()!r}: {exc.detail}") from None
    return keys


def witness_app(witness: Witness) -> Starlette:
    """The witness's HTTP interface (module docstring)."""

    async def add_checkpoint(request: Request) -> Response:
        submission = parse_submission(await _body(request))
        outcome = await run_in_threadpool(witness.add_checkpoint, submission)
        if isinstance(outcome, SizeMismatch):
            # NOTE: exactly this type, no charset parameter (Starlette adds one to text/*)
            return Response(f"{outcome.size}\n", 409, headers={"Content-Type": SIZE_TYPE})
        return Response(outcome.lines, 200, media_type="text/plain; charset=utf-8")

    async def checkpoint(request: Request) -> Response:
        origin_hash = request.path_params["origin_hash"]
        record = witness.latest(origin_hash) if _ORIGIN_HASH.fullmatch(origin_hash) else None
        if record is None:
            raise ResourceNotFound("this witness has cosigned no checkpoint of that log")
        headers = {"Cache-Control": "no-store"}
        return Response(record.note, media_type="text/plain; charset=utf-8", headers=headers)

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/{origin_hash}/checkpoint", checkpoint, methods=["GET"]),
        ],
        exception_handlers={FederationError: _problem, HTTPException: _http_problem},
    )


def serve(
    witness: Witness, *, host: str, port: int, started: Callable[[str], None] = lambda _: None
) -> None:
    """Serve ``witness`` on ``host:port`` until SIGINT or SIGTERM, in this process: one
    process, so that its lock makes each check and record one step. ``started`` is
    called with the URL once it listens; :class:`~federation.errors.PortUnavailable`
    when it cannot."""
    import uvicorn

    listening = ports.listen(host, port)
    try:
        bound = listening.getsockname()[1]
        config = uvicorn.Config(
            witness_app(witness),
            host=host,
            port=bound,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        shown = f"[{host}]" if ":" in host else host
        started(f"http://{shown}:{bound}")
        server.run(sockets=[listening])
    finally:
        listening.close()


def create_key_file(path: Path, name: str, clock: Clock) -> Ed25519CosignatureSigner:
    """A new witness key named ``name``, written to ``path`` (0600; never over an
    existing file)."""
    signer = generate_witness_key(name, clock)
    if path.exists() or path.is_symlink():
        raise ConfigurationError(f"{path} exists: a witness key is never overwritten")
    files.create_private(path, (signer.private_key_text + "\n").encode("ascii"))
    return signer


def load_key_file(path: Path, clock: Clock) -> Ed25519CosignatureSigner:
    """The witness key in ``path``, which only its owner may read."""
    try:
        files.refuse_shared(path, "the witness key")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the witness key {path}: {exc}") from None
    try:
        return parse_witness_private_key(text, clock)
    except InvalidRequest as exc:
        raise ConfigurationError(f"{path}: {exc.detail}") from None


async def _body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise RequestTooLarge(f"an add-checkpoint body is at most {MAX_BODY} bytes")
    return bytes(body)


async def _problem(request: Request, exc: Exception) -> Response:
    error = exc if isinstance(exc, FederationError) else InternalError()
    if type(error) is InternalError or isinstance(error, ConfigurationError):
        logger.error("add-checkpoint failed: %s", error.detail or type(error).__name__)
        error = InternalError()  # NOTE: the detail (a path, say) stays in the log
    body = error.problem(instance=request.url.path, trace_id=None)
    return JSONResponse(
        body, error.status, headers=error.headers, media_type="application/problem+json"
    )


async def _http_problem(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return await _problem(request, BY_STATUS.get(status, InternalError)())
