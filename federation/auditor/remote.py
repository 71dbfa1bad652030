"""Reading an issuer's transparency log over HTTP: what an auditor fetches.

Under its issuer URL ``ISS`` an issuer serves the log in the C2SP ``tlog-tiles``
layout (``ISS/log/checkpoint``, ``ISS/log/tile/<L>/<N>[.p/<W>]``,
``ISS/log/tile/entries/<N>[.p/<W>]``), the proofs of its API
(``ISS/api/v1/log/inclusion``, ``ISS/api/v1/log/consistency``), and in its discovery
document where the log is and which key signs it. A static copy (``federation
publish``) serves the same files at the same paths, without the API.

Nothing read here is trusted: a :class:`RemoteLog` hands over bytes and parsed
answers, and the caller checks them against a checkpoint signed by a key it pinned.
Every answer is read up to a size bound, so a hostile server cannot exhaust memory.
An API key, when given, goes to the issuer only, as ``Authorization: Bearer``, and
never over plain http to another host (see :class:`~federation.client.ApiClient`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

import httpx

from federation.client import ApiClient, error_from_response, unreachable
from federation.errors import (
    FederationError,
    InvalidIssuerUrl,
    InvalidRequest,
    IssuerUnreachable,
    LogVerificationFailed,
    ResourceNotFound,
    ResourceUnavailable,
)
from federation.transparency.merkle import HASH_SIZE
from federation.transparency.tiles import (
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    EntryBundle,
    Tile,
    decode_bundle,
)

LOG_PATH = "/log/"
INCLUSION_PATH = "/api/v1/log/inclusion"
CONSISTENCY_PATH = "/api/v1/log/consistency"
DISCOVERY_PATH = "/.well-known/openid-configuration"
# The most a well-behaved log ever answers, per kind of resource.
MAX_CHECKPOINT = 64 * 1024  # a note of up to 100 signatures
MAX_TILE = TILE_WIDTH * HASH_SIZE
MAX_BUNDLE = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)
MAX_DOCUMENT = 1024 * 1024  # a discovery document or a proof, in JSON
_MAX_PROOF = 2 * 64  # hashes: a consistency proof of a tree of 2**63 leaves has fewer


@dataclass(frozen=True)
class LogDiscovery:
    """What an issuer's discovery document says of its log (``transparency_log``):
    where it is, its checkpoints' origin line, and the note verifier key that signs
    them. Taken on the issuer's word: pin the key rather than re-read it."""

    url: str
    origin: str
    verifier_key: str


@dataclass(frozen=True)
class InclusionAnswer:
    """The issuer's answer to "where is this token?": the entry's index and bytes, the
    inclusion proof, and the signed checkpoint of ``tree_size`` it proves against (None
    when the log signed none of that size)."""

    index: int
    tree_size: int
    entry: bytes
    proof: tuple[bytes, ...]
    checkpoint: str | None


class RemoteLog:
    """An issuer's transparency log read over HTTP: a
    :class:`~federation.transparency.tiles.TileReader` too, so that
    :class:`~federation.transparency.tiles.TileHashes` reads the log's hashes from it."""

    def __init__(
        self,
        issuer_url: str,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._api = ApiClient(issuer_url, api_key, transport=transport, timeout=timeout)

    def __enter__(self) -> RemoteLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()

    @property
    def issuer_url(self) -> str:
        return self._api.base_url

    def discover(self) -> LogDiscovery:
        """The ``transparency_log`` member of the issuer's discovery document;
        :class:`InvalidIssuerUrl` when the issuer has none."""
        document = _json_object(self._get(DISCOVERY_PATH, MAX_DOCUMENT), DISCOVERY_PATH)
        member = document.get("transparency_log")
        if member is None:
            raise InvalidIssuerUrl(
                f"the issuer at {self.issuer_url} announces no transparency log in its "
                "discovery document"
            )
        fields = ("url", "origin", "verifier_key")
        if not isinstance(member, dict) or not all(
            isinstance(member.get(name), str) and member[name] for name in fields
        ):
            raise LogVerificationFailed(
                "the discovery document's transparency_log is not an object of url, origin "
                "and verifier_key strings"
            )
        return LogDiscovery(member["url"], member["origin"], member["verifier_key"])

    def checkpoint(self) -> str:
        """The log's latest signed checkpoint, as served (unverified)."""
        try:
            data = self._get(f"{LOG_PATH}checkpoint", MAX_CHECKPOINT)
        except ResourceNotFound:
            raise InvalidIssuerUrl(
                f"no transparency log at {self.issuer_url}{LOG_PATH} (its checkpoint is not found)"
            ) from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise LogVerificationFailed("the log's checkpoint is not UTF-8 text") from None

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        """The bytes of each of ``tiles`` (the TileReader protocol; unverified)."""
        found = []
        for tile in tiles:
            data, full = self._read_item(tile, MAX_TILE)
            found.append(data[: tile.width * HASH_SIZE] if full else data)
        return found

    def read_bundle(self, bundle: EntryBundle) -> list[bytes]:
        """The entries of ``bundle``, split (unverified: whoever reads them hashes them
        against a signed checkpoint)."""
        data, full = self._read_item(bundle, MAX_BUNDLE)
        if full:
            return decode_bundle(replace(bundle, width=TILE_WIDTH), data)[: bundle.width]
        return decode_bundle(bundle, data)

    def _read_item(self, item: Tile | EntryBundle, limit: int) -> tuple[bytes, bool]:
        """The bytes of a tile or bundle, and whether they are of the full one instead:
        a log may stop serving a partial tile once the full one exists, so a reader
        that asked for the partial one just before falls back to it (as the
        specification advises). A log that serves neither does not serve the tree it
        signed."""
        try:
            return self._get(f"{LOG_PATH}{item.path}", limit), False
        except ResourceNotFound:
            if item.full:
                raise LogVerificationFailed(
                    f"the log does not serve {item.path}, which its signed tree holds"
                ) from None
        full = replace(item, width=TILE_WIDTH)
        try:
            return self._get(f"{LOG_PATH}{full.path}", limit), True
        except ResourceNotFound:
            raise LogVerificationFailed(
                f"the log serves neither {item.path} nor {full.path}, which its signed tree holds"
            ) from None

    def inclusion(
        self, *, jti: str | None = None, token_sha256: str | None = None, size: int | None = None
    ) -> InclusionAnswer:
        """The inclusion proof of the token named by ``jti`` or by its SHA-256 (hex), in
        the tree of ``size`` entries (default: the latest checkpoint's);
        :class:`ResourceNotFound` when that tree does not hold it."""
        if (jti is None) == (token_sha256 is None):
            raise InvalidRequest("name the token by its jti or by its SHA-256, not both")
        params: dict[str, Any] = {"jti": jti, "token_sha256": token_sha256, "size": size}
        answer = _json_object(self._get(INCLUSION_PATH, MAX_DOCUMENT, params), INCLUSION_PATH)
        index, tree_size = answer.get("index"), answer.get("tree_size")
        entry, checkpoint = answer.get("entry"), answer.get("checkpoint")
        if not (
            _is_count(index)
            and _is_count(tree_size)
            and isinstance(entry, str)
            and (checkpoint is None or isinstance(checkpoint, str))
        ):
            raise LogVerificationFailed(
                "the inclusion proof's answer is not index, tree_size, entry, proof and checkpoint"
            )
        return InclusionAnswer(
            index=index,
            tree_size=tree_size,
            entry=_base64(entry, "the entry"),
            proof=_hashes(answer.get("proof"), "inclusion"),
            checkpoint=checkpoint,
        )

    def consistency(self, old_size: int, new_size: int) -> tuple[bytes, ...]:
        """The proof that the tree of ``new_size`` entries extends the one of
        ``old_size`` (unverified: check it against both signed roots)."""
        params = {"old": old_size, "new": new_size}
        answer = _json_object(self._get(CONSISTENCY_PATH, MAX_DOCUMENT, params), CONSISTENCY_PATH)
        if answer.get("old_size") != old_size or answer.get("new_size") != new_size:
            raise LogVerificationFailed(
                f"the consistency proof answered is not between {old_size} and {new_size}"
            )
        return _hashes(answer.get("proof"), "consistency")

    def _get(self, path: str, limit: int, params: dict[str, Any] | None = None) -> bytes:
        """The body of ``GET path`` (relative to the issuer URL), read up to ``limit``
        bytes; the project's errors for anything but a 200."""
        api = self._api
        query = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            with api.http.stream("GET", path, params=query) as response:
                body = _read(response, limit if response.status_code < 400 else MAX_DOCUMENT)
        except httpx.TimeoutException:
            raise ResourceUnavailable(
                f"the issuer at {api.base_url} did not answer {path} in time"
            ) from None
        except httpx.HTTPError as exc:
            raise IssuerUnreachable(unreachable(api.base_url, api.origin, exc)) from None
        if response.status_code == 200:
            return body
        if response.status_code >= 400:
            raise _error(response, body, api.origin)
        raise InvalidIssuerUrl(
            f"{api.base_url}{path} answered HTTP {response.status_code}, not the log"
        )


def _read(response: httpx.Response, limit: int) -> bytes:
    chunks, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > limit:
            raise LogVerificationFailed(
                f"{response.request.url.path} is larger than {limit} bytes: not the log's"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _error(response: httpx.Response, body: bytes, origin: str) -> FederationError:
    """The error of a non-2xx answer, read from its (bounded) body."""
    whole = httpx.Response(response.status_code, headers=response.headers, content=body)
    return error_from_response(whole, origin)


def _json_object(data: bytes, path: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError:
        raise LogVerificationFailed(f"{path} did not answer JSON") from None
    if not isinstance(document, dict):
        raise LogVerificationFailed(f"{path} did not answer a JSON object")
    return document


def _is_count(value: object) -> TypeGuard[int]:
    return type(value) is int and 0 <= value < 2**63


def _base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise LogVerificationFailed(f"{what} is not standard padded base64") from None


def _hashes(value: object, kind: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > _MAX_PROOF:
        raise LogVerificationFailed(f"the {kind} proof is not a list of base64 hashes")
    hashes = []
    for item in value:
        raw = _base64(item, f"a hash of the {kind} proof") if isinstance(item, str) else b""
        if len(raw) != HASH_SIZE:
            raise LogVerificationFailed(f"a hash of the {kind} proof is not {HASH_SIZE} bytes")
        hashes.append(raw)
    return tuple(hashes)
