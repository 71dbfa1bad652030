"""The transparency log page: the log's head, and a token's place in the log, each
checked here, in the console, with the log's verifier key from the discovery document.

The console reads the log as the signed-in key (which needs the ``audit`` or ``admin``
scope, unless the issuer serves its log publicly): ``GET /log/checkpoint`` for the head,
``GET /api/v1/log/inclusion`` for a token's entry and inclusion proof. Neither is taken
on trust, so that the page says what an auditor outside would find:

- the checkpoint must carry a valid signature of the key the discovery document names,
  and be of the origin it names;
- a proof's checkpoint must verify the same way and be of the proof's tree size, its
  entry must be in the canonical encoding and name the token asked for, and the proof
  must put the entry's leaf at its index in that tree.

A token is asked for by its ``jti`` (a GET, so the issued tokens list links here) or
pasted whole. A pasted token goes no further than this module: only its SHA-256
(:func:`~federation.transparency.token_sha256`) is looked up; the form is a POST, so it
is in no URL, history or access log, and the page neither keeps nor repeats it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from federation.console.web import View, page
from federation.domain.secret_shapes import JWT
from federation.errors import (
    AuthenticationRequired,
    FederationError,
    InvalidRequest,
    LogVerificationFailed,
    NotAuthorized,
    ResourceNotFound,
)
from federation.transparency.checkpoints import Checkpoint, open_checkpoint
from federation.transparency.entries import LogEntry, token_sha256
from federation.transparency.notes import NoteVerifier, parse_verifier_key

TOKEN_FIELD = "token"  # noqa: S105 - the name of a form field, not a secret
MAX_TOKEN_CHARS = 16384  # longer than any token this issuer signs
NO_SCOPE = (
    "Reading the transparency log takes an API key with the audit or admin scope, and "
    "this key has neither. Sign in with such a key to see the log's head and prove tokens."
)
LOG_OFF = (
    "This issuer keeps no transparency log (FEDERATION_TRANSPARENCY_LOG is off): there is "
    "no head to show and no token to prove."
)
NOT_LOGGED = (
    "The log does not include this token: no token with that jti or SHA-256 was issued "
    "here, or it was issued a moment ago (a token is logged within about a second)."
)
NOT_A_JWT = "That is not a compact JWT (three base64url parts, the first starting with eyJ)."


@dataclass(frozen=True)
class Head:
    """The log's head as the console fetched it: the signed checkpoint, what it says
    (None when it is not a checkpoint), and why it did not verify (None: it did)."""

    note: str
    fetched_at: datetime
    verifier_key: str | None
    checkpoint: Checkpoint | None
    failure: str | None

    @property
    def root(self) -> str | None:
        return _b64(self.checkpoint.root) if self.checkpoint else None


@dataclass(frozen=True)
class Proof:
    """A token's inclusion as the API answered it, and why it did not verify (None: it
    did). ``entry`` is None when the answer holds no entry the console can read."""

    index: int | None = None
    tree_size: int | None = None
    hashes: int = 0
    entry: LogEntry | None = None
    failure: str | None = None

    @property
    def issued_at(self) -> str:
        return _moment(self.entry.iat) if self.entry else ""

    @property
    def expires_at(self) -> str:
        return _moment(self.entry.exp) if self.entry else ""


class _InclusionAnswer(BaseModel):
    """``GET /api/v1/log/inclusion``'s body, read strictly: the issuer is what the proof
    checks, so its answer is a document from outside."""

    model_config = ConfigDict(strict=True, frozen=True)

    index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    entry: str
    proof: list[str]
    checkpoint: str | None


@page
async def show_log(request: Request, view: View) -> Response:
    """The head; and the proof of the token whose ``jti`` the query names."""
    jti = request.query_params.get("jti", "").strip()
    return await _log_page(view, jti=jti)


@page
async def prove_token(request: Request, view: View) -> Response:
    """The head, and the proof of a pasted token, looked up by its SHA-256."""
    form = await view.form()
    raw = form.get(TOKEN_FIELD)
    token = raw.strip() if isinstance(raw, str) else ""
    # NOTE: the token's shape is checked (which makes it ASCII) and its digest taken;
    # nothing else here sees it, and no message repeats it.
    if len(token) > MAX_TOKEN_CHARS or not JWT.fullmatch(token):
        return await _log_page(view, token_error=NOT_A_JWT)
    return await _log_page(view, digest=token_sha256(token))


async def _log_page(
    view: View, *, jti: str = "", digest: str | None = None, token_error: str | None = None
) -> Response:
    data: dict[str, Any] = {
        "asked_jti": jti,
        "digest": digest,
        "token_field": TOKEN_FIELD,
        "head": None,
        "proof": None,
        "proof_error": token_error,
        "refusal": None,
    }
    published = await _published(view)
    if published is None:
        return view.render("log.html", status=404, **{**data, "refusal": LOG_OFF})
    try:
        note = await view.api.text("/log/checkpoint")
    except NotAuthorized:
        return view.render("log.html", status=403, **{**data, "refusal": NO_SCOPE})
    except ResourceNotFound:
        return view.render("log.html", status=404, **{**data, "refusal": LOG_OFF})
    verifier, key_problem = _verifier(published)
    origin = published.get("origin")
    origin = origin if isinstance(origin, str) else None
    data["head"] = _head(note, view.console.clock.now(), published, verifier, key_problem, origin)
    status = 400 if token_error else 200
    if jti or digest:
        try:
            answer = await view.api.get(
                "/api/v1/log/inclusion", {"jti": jti or None, "token_sha256": digest}
            )
        except AuthenticationRequired:
            raise
        except ResourceNotFound:
            data["proof_error"], status = NOT_LOGGED, 404
        except FederationError as error:
            data["proof_error"], status = error.message, error.status
        else:
            data["proof"] = _proof(
                answer, verifier, key_problem, origin, jti=jti or None, digest=digest
            )
    return view.render("log.html", status=status, **data)


async def _published(view: View) -> Mapping[str, Any] | None:
    """Where the discovery document says the log is and what key signs it; None when
    the issuer keeps no log."""
    discovery = await view.api.get("/.well-known/openid-configuration")
    published = discovery.get("transparency_log") if isinstance(discovery, dict) else None
    return published if isinstance(published, dict) else None


def _verifier(published: Mapping[str, Any]) -> tuple[NoteVerifier | None, str]:
    """The log's verifier, or why there is none."""
    text = published.get("verifier_key")
    if not isinstance(text, str):
        return None, "the discovery document names no verifier key"
    try:
        return parse_verifier_key(text), ""
    except InvalidRequest as exc:
        return None, f"the discovery document's verifier key is not one: {exc.detail}"


def _head(
    note: str,
    fetched_at: datetime,
    published: Mapping[str, Any],
    verifier: NoteVerifier | None,
    key_problem: str,
    origin: str | None,
) -> Head:
    key = published.get("verifier_key")
    key_text = key if isinstance(key, str) else None
    try:
        if verifier is None:
            raise LogVerificationFailed(key_problem)
        checkpoint = open_checkpoint(note, [verifier], origin=origin)
    except LogVerificationFailed as exc:
        return Head(note, fetched_at, key_text, _unverified(note), exc.detail or exc.title)
    return Head(note, fetched_at, key_text, checkpoint, None)


def _unverified(note: str) -> Checkpoint | None:
    """What a checkpoint that did not verify says, to show beside why; None when its
    text is not a checkpoint."""
    text, separator, _ = note.partition("\n\n")
    try:
        return Checkpoint.parse(f"{text}\n") if separator else None
    except LogVerificationFailed:
        return None


def _proof(
    answer: Any,
    verifier: NoteVerifier | None,
    key_problem: str,
    origin: str | None,
    *,
    jti: str | None,
    digest: str | None,
) -> Proof:
    """The answer checked as the module's docstring says; the first failure named."""
    try:
        found = _InclusionAnswer.model_validate(answer)
    except ValidationError:
        return Proof(failure="the issuer's answer is not an inclusion proof")
    shown = Proof(index=found.index, tree_size=found.tree_size, hashes=len(found.proof))
    try:
        data = _unb64(found.entry, "entry")
        hashes = [_unb64(value, "proof hash") for value in found.proof]
        entry = LogEntry.decode(data)
        shown = Proof(found.index, found.tree_size, len(hashes), entry)
        if verifier is None:
            raise LogVerificationFailed(key_problem)
        if found.checkpoint is None:
            raise LogVerificationFailed(f"the log signed no checkpoint of {found.tree_size}")
        head = open_checkpoint(found.checkpoint, [verifier], origin=origin)
        if head.size != found.tree_size:
            raise LogVerificationFailed(
                f"the proof is for a tree of {found.tree_size}, its checkpoint of {head.size}"
            )
        if digest is not None and entry.token_sha256 != digest:
            raise LogVerificationFailed(f"the log's entry {found.index} is of another token")
        if jti is not None and entry.jti != jti:
            raise LogVerificationFailed(f"the log's entry {found.index} is of {entry.jti}")
        head.verify_inclusion(entry.leaf_hash(), found.index, hashes)
    except LogVerificationFailed as exc:
        return Proof(
            shown.index, shown.tree_size, shown.hashes, shown.entry, exc.detail or exc.title
        )
    return shown


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise LogVerificationFailed(f"the proof's {what} is not base64") from None


def _moment(seconds: int) -> str:
    """A time of an entry for the ``when`` filter; the number itself past year 9999."""
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return str(seconds)
