"""Reading a log over HTTP: the paths of the contract, the API key sent as a Bearer
token to the issuer only, answers parsed strictly and read up to a bound, and every
failure one of the project's errors."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import httpx
import pytest

from federation.auditor.remote import MAX_TILE, RemoteLog
from federation.errors import (
    AuthenticationRequired,
    InvalidIssuerUrl,
    InvalidRequest,
    IssuerUnreachable,
    LogVerificationFailed,
    ResourceUnavailable,
)
from federation.transparency import EntryBundle, Tile, encode_bundle

ISSUER = "https://issuer.example.test/tenant"
KEY = "wk-audit-key"
HASH = bytes(range(32))

Handler = Callable[[httpx.Request], httpx.Response]


def remote(handler: Handler, api_key: str | None = KEY, url: str = ISSUER) -> RemoteLog:
    return RemoteLog(url, api_key, transport=httpx.MockTransport(handler))


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def problem(status: int, code: str, detail: str) -> httpx.Response:
    body = {"type": f"/errors/{code.replace('_', '-')}/", "status": status, "detail": detail}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def test_the_paths_are_the_contracts_under_the_issuer_url_with_the_key() -> None:
    seen: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(
            (request.url.path, request.url.query.decode(), request.headers.get("authorization"))
        )
        if request.url.path.endswith("/checkpoint"):
            return httpx.Response(200, text="checkpoint text\n")
        if "/tile/entries/" in request.url.path:
            return httpx.Response(200, content=encode_bundle([b"a", b"bc"]))
        if "/tile/" in request.url.path:
            return httpx.Response(200, content=HASH * 3)
        if request.url.path.endswith("/inclusion"):
            return httpx.Response(
                200,
                json={"index": 1, "tree_size": 2, "entry": b64(b"bc"), "proof": [b64(HASH)],
                      "checkpoint": "signed\n"},
            )  # fmt: skip
        return httpx.Response(200, json={"old_size": 1, "new_size": 2, "proof": [b64(HASH)]})

    with remote(handler) as log:
        assert log.checkpoint() == "checkpoint text\n"
        assert log.read_tiles([Tile(1, 1234067, 3)]) == [HASH * 3]
        assert log.read_bundle(EntryBundle(0, 2)) == [b"a", b"bc"]
        answer = log.inclusion(jti="j1")
        assert (answer.index, answer.tree_size, answer.entry, answer.proof) == (
            1,
            2,
            b"bc",
            (HASH,),
        )
        assert log.inclusion(token_sha256="ab" * 32, size=2).checkpoint == "signed\n"
        assert log.consistency(1, 2) == (HASH,)

    assert seen == [
        ("/tenant/log/checkpoint", "", f"Bearer {KEY}"),
        ("/tenant/log/tile/1/x001/x234/067.p/3", "", f"Bearer {KEY}"),
        ("/tenant/log/tile/entries/000.p/2", "", f"Bearer {KEY}"),
        ("/tenant/api/v1/log/inclusion", "jti=j1", f"Bearer {KEY}"),
        ("/tenant/api/v1/log/inclusion", f"token_sha256={'ab' * 32}&size=2", f"Bearer {KEY}"),
        ("/tenant/api/v1/log/consistency", "old=1&new=2", f"Bearer {KEY}"),
    ]


def test_no_key_no_authorization_header() -> None:
    headers: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers.get("authorization"))
        return httpx.Response(200, text="x\n")

    with remote(handler, api_key=None) as log:
        log.checkpoint()
    assert headers == [None]


def test_a_key_is_never_sent_over_plain_http_to_another_host() -> None:
    with pytest.raises(InvalidIssuerUrl, match="refusing to send an API key over plain http"):
        remote(lambda request: httpx.Response(200), url="http://issuer.example.test")


def test_problems_become_the_projects_errors_without_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return problem(401, "authentication_required", "an audit key is needed")

    with remote(handler) as log, pytest.raises(AuthenticationRequired) as caught:
        log.checkpoint()
    assert caught.value.detail == "an audit key is needed"
    assert KEY not in str(caught.value)


def test_a_missing_log_is_named() -> None:
    with (
        remote(lambda request: httpx.Response(404)) as log,
        pytest.raises(InvalidIssuerUrl) as caught,
    ):
        log.checkpoint()
    assert f"no transparency log at {ISSUER}/log/" in str(caught.value.detail)


def test_a_partial_tile_gone_is_read_from_the_full_one() -> None:
    full = [bytes([i]) * 32 for i in range(256)]
    entries = [b"entry %d" % i for i in range(256)]

    def handler(request: httpx.Request) -> httpx.Response:
        if ".p/" in request.url.path:
            return httpx.Response(404)
        if "/entries/" in request.url.path:
            return httpx.Response(200, content=encode_bundle(entries))
        return httpx.Response(200, content=b"".join(full))

    with remote(handler) as log:
        assert log.read_tiles([Tile(0, 0, 3)]) == [b"".join(full[:3])]
        assert log.read_bundle(EntryBundle(0, 5)) == entries[:5]


@pytest.mark.parametrize("item", [Tile(0, 0, 3), Tile(0, 0), EntryBundle(0, 5), EntryBundle(1)])
def test_a_tile_the_log_does_not_serve_is_a_log_failure(item: Tile | EntryBundle) -> None:
    def read(log: RemoteLog) -> object:
        return log.read_tiles([item]) if isinstance(item, Tile) else log.read_bundle(item)

    with (
        remote(lambda request: httpx.Response(404)) as log,
        pytest.raises(LogVerificationFailed, match="which its signed tree holds"),
    ):
        read(log)


def test_an_unreachable_issuer_and_a_slow_one() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with remote(refused) as log, pytest.raises(IssuerUnreachable, match=ISSUER):
        log.checkpoint()
    with remote(slow) as log, pytest.raises(ResourceUnavailable, match="did not answer"):
        log.checkpoint()


def test_answers_are_read_up_to_a_bound() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"\0" * (MAX_TILE + 1))

    with remote(handler) as log, pytest.raises(LogVerificationFailed, match="larger than"):
        log.read_tiles([Tile(0, 0)])


@pytest.mark.parametrize(
    "answer",
    [
        {"index": "1", "tree_size": 2, "entry": "YQ==", "proof": [], "checkpoint": "c"},
        {"index": -1, "tree_size": 2, "entry": "YQ==", "proof": [], "checkpoint": "c"},
        {"index": True, "tree_size": 2, "entry": "YQ==", "proof": [], "checkpoint": "c"},
        {"index": 1, "tree_size": 2, "entry": "YQ", "proof": [], "checkpoint": "c"},
        {"index": 1, "tree_size": 2, "entry": "YQ==", "proof": ["YQ=="], "checkpoint": "c"},
        {"index": 1, "tree_size": 2, "entry": "YQ==", "proof": "", "checkpoint": "c"},
        {"index": 1, "tree_size": 2, "entry": "YQ==", "proof": [], "checkpoint": 3},
        [1, 2],
    ],
)
def test_a_malformed_inclusion_answer_is_refused(answer: object) -> None:
    with (
        remote(lambda request: httpx.Response(200, json=answer)) as log,
        pytest.raises(LogVerificationFailed),
    ):
        log.inclusion(jti="j1")


def test_a_consistency_proof_between_other_sizes_is_refused() -> None:
    answer = {"old_size": 1, "new_size": 3, "proof": []}
    with (
        remote(lambda request: httpx.Response(200, json=answer)) as log,
        pytest.raises(LogVerificationFailed, match="not between 1 and 2"),
    ):
        log.consistency(1, 2)


def test_a_token_is_named_one_way() -> None:
    with remote(lambda request: httpx.Response(200)) as log:
        with pytest.raises(InvalidRequest):
            log.inclusion()
        with pytest.raises(InvalidRequest):
            log.inclusion(jti="j", token_sha256="ab" * 32)


def test_discovery_names_the_log_or_says_there_is_none() -> None:
    member = {"url": f"{ISSUER}/log/", "origin": "o/log", "verifier_key": "o/log+1+AA=="}
    documents = iter([{"issuer": ISSUER, "transparency_log": member}, {"issuer": ISSUER},
                      {"issuer": ISSUER, "transparency_log": {"url": 1}}])  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/tenant/.well-known/openid-configuration"
        return httpx.Response(200, content=json.dumps(next(documents)))

    with remote(handler) as log:
        found = log.discover()
        assert (found.url, found.origin, found.verifier_key) == tuple(member.values())
        with pytest.raises(InvalidIssuerUrl, match="announces no transparency log"):
            log.discover()
        with pytest.raises(LogVerificationFailed, match="transparency_log is not an object"):
            log.discover()
