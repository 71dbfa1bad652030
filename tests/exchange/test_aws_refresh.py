"""The token file behind ``aws-web-identity --keep-fresh``: replaced atomically, rewritten
at about half of each token's lifetime, until the issuer refuses for good. The clock
and the sleep are injected: nothing here waits."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from federation.clock import ManualClock, SystemClock
from federation.errors import (
    AuthenticationRequired,
    Conflict,
    FederationError,
    OperationNotSupported,
    ResourceUnavailable,
)
from federation.exchange import web_identity
from federation.exchange.source import MintedToken
from tests.cli.helpers import verify_with_pyjwt
from tests.exchange.aws_helpers import new_agent, source_for
from tests.support import LiveServer, World, serve_issuer

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class ScriptedSource:
    """Mints hour-long tokens on the clock; ``failures`` are raised in turn first."""

    def __init__(self, clock: ManualClock, failures: Sequence[FederationError] = ()) -> None:
        self.clock = clock
        self.failures = list(failures)
        self.minted: list[MintedToken] = []

    @property
    def run_id(self) -> str:
        return "r1"

    def mint(
        self,
        audience: str,
        *,
        duration: str | None = None,
        subject_template: Sequence[str] | None = None,
        aws_session_tags: Sequence[str] | None = None,
        algorithm: str | None = None,
    ) -> MintedToken:
        assert audience == "sts.amazonaws.com"
        if self.failures:
            raise self.failures.pop(0)
        now = self.clock.now()
        token = f"token-{len(self.minted)}"
        self.minted.append(MintedToken(token, now, now + HOUR, "sub", "https://issuer"))
        return self.minted[-1]


class Sleeper:
    """Advances the clock instead of waiting, and records how long each wait was."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def test_rewrites_at_half_life_and_stops_when_the_run_has_ended(
    tmp_path: Path, clock: ManualClock
) -> None:
    finished = OperationNotSupported("run r1 is SUCCEEDED")
    source = ScriptedSource(clock)
    path = tmp_path / "token"
    token_file = web_identity.WebIdentityTokenFile(path, source)
    first = token_file.refresh()
    sleep = Sleeper(clock)
    # A reader that opened the file keeps reading the token it opened: each rewrite is a
    # new file renamed over the old one, never the old one written over.
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(path.open())]

        def sleep_and_look(seconds: float) -> None:
            sleep(seconds)
            readers.append(stack.enter_context(path.open()))
            if len(sleep.waits) == 3:
                source.failures.append(finished)

        reason = web_identity.keep_fresh(token_file, first, clock=clock, sleep=sleep_and_look)
        seen = [reader.read() for reader in readers]
    assert reason == f"the issuer refused: {finished.message}"
    assert sleep.waits == [1800.0] * 3  # half of each hour-long token's life
    assert [token.token for token in source.minted] == ["token-0", "token-1", "token-2"]
    assert path.read_text() == "token-2"  # the last good token stays for the SDK
    assert seen == ["token-0", "token-0", "token-1", "token-2"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["token"]  # no temporary file left behind


@pytest.mark.parametrize(
    "refusal",
    [
        AuthenticationRequired("the key was revoked"),
        OperationNotSupported("run r1 is CANCELLED"),
        FederationError("not retryable", retryable=False),
    ],
)
def test_stops_on_any_final_refusal(
    tmp_path: Path, clock: ManualClock, refusal: FederationError
) -> None:
    source = ScriptedSource(clock, [refusal])
    token_file = web_identity.WebIdentityTokenFile(tmp_path / "token", source)
    web_identity.write_token_file(token_file.path, "old")
    current = MintedToken("old", START, START + HOUR, "sub", "https://issuer")
    reason = web_identity.keep_fresh(token_file, current, clock=clock, sleep=Sleeper(clock))
    assert reason.startswith("the issuer refused:")
    assert token_file.path.read_text() == "old"


def test_passing_failures_are_retried_soon(tmp_path: Path, clock: ManualClock) -> None:
    failures = [ResourceUnavailable("the issuer answered HTTP 503"), Conflict("run is BLOCKED")]
    source = ScriptedSource(clock, failures)
    token_file = web_identity.WebIdentityTokenFile(tmp_path / "token", source)
    web_identity.write_token_file(token_file.path, "old")
    current = MintedToken("old", START, START + HOUR, "sub", "https://issuer")
    sleep = Sleeper(clock)

    def sleep_until_one_mint(seconds: float) -> None:
        sleep(seconds)
        if source.minted:
            source.failures.append(OperationNotSupported("done"))

    web_identity.keep_fresh(
        token_file, current, clock=clock, sleep=sleep_until_one_mint, retry_seconds=30
    )
    assert sleep.waits == [1800.0, 30.0, 30.0, 1800.0]
    assert token_file.path.read_text() == "token-0"


def test_gives_up_a_lifetime_after_the_last_token_expired(
    tmp_path: Path, clock: ManualClock
) -> None:
    outage = [ResourceUnavailable("cannot reach the issuer")] * 1000
    token_file = web_identity.WebIdentityTokenFile(
        tmp_path / "token", ScriptedSource(clock, outage)
    )
    web_identity.write_token_file(token_file.path, "old")
    current = MintedToken("old", START, START + HOUR, "sub", "https://issuer")
    sleep = Sleeper(clock)
    reason = web_identity.keep_fresh(
        token_file, current, clock=clock, sleep=sleep, retry_seconds=60
    )
    assert reason.startswith("gave up: the issuer kept failing")
    assert START + 2 * HOUR <= clock.now() <= START + 2 * HOUR + timedelta(seconds=60)
    assert len(sleep.waits) == 1 + 90  # half an hour, then a minute at a time


def test_stops_when_the_token_file_is_removed(tmp_path: Path, clock: ManualClock) -> None:
    source = ScriptedSource(clock)
    token_file = web_identity.WebIdentityTokenFile(tmp_path / "token", source)
    sleep = Sleeper(clock)

    def remove_on_second_wait(seconds: float) -> None:
        sleep(seconds)
        if len(sleep.waits) == 2:
            token_file.path.unlink()

    # No current token: the loop writes one first.
    reason = web_identity.keep_fresh(token_file, None, clock=clock, sleep=remove_on_second_wait)
    assert reason == "the token file was removed"
    assert len(source.minted) == 2


def test_never_waits_less_than_a_moment(tmp_path: Path, clock: ManualClock) -> None:
    """A token already past half its life (or a clock far off) refreshes at once, but
    never in a busy loop."""
    source = ScriptedSource(clock, [OperationNotSupported("done")])
    token_file = web_identity.WebIdentityTokenFile(tmp_path / "token", source)
    web_identity.write_token_file(token_file.path, "old")
    stale = MintedToken("old", START - 2 * HOUR, START - HOUR, "sub", "https://issuer")
    sleep = Sleeper(clock)
    web_identity.keep_fresh(token_file, stale, clock=clock, sleep=sleep)
    assert sleep.waits == [1.0]


def test_the_token_file_is_private_and_its_directory_made_private(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    web_identity.write_token_file(shared / "token", "a")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # an existing directory is left be
    assert stat.S_IMODE((shared / "token").stat().st_mode) == 0o600
    web_identity.write_token_file(tmp_path / "new" / "dir" / "token", "b")
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700


def test_reading_the_current_token_for_its_times(tmp_path: Path) -> None:
    now = int(datetime.now(UTC).timestamp())
    token = jwt.encode({"iss": "https://i", "sub": "s", "iat": now, "exp": now + 60}, "k" * 32)
    token_file = web_identity.WebIdentityTokenFile(
        tmp_path / "token", ScriptedSource(ManualClock(START))
    )
    assert token_file.current() is None  # no file yet
    web_identity.write_token_file(token_file.path, "not a token")
    assert token_file.current() is None
    web_identity.write_token_file(token_file.path, token)
    current = token_file.current()
    assert current is not None
    assert (current.issued_at.timestamp(), current.expires_at.timestamp()) == (now, now + 60)


# ---- with the real issuer --------------------------------------------------------------


@pytest.fixture(scope="module")
def server(templates: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("aws-issuer")) as server:
        yield server


def test_the_refresher_stops_when_the_issuer_says_the_run_is_over(
    server: LiveServer, tmp_path: Path
) -> None:
    agent = new_agent(server)
    source = source_for(server, agent)
    path = tmp_path / "token"
    clock = ManualClock(SystemClock().now())
    sleep = Sleeper(clock)
    tokens: list[str] = []

    def sleep_then_end_the_run(seconds: float) -> None:
        sleep(seconds)
        tokens.append(path.read_text())
        if len(sleep.waits) == 2:
            World.live(server).set_state(agent.run_id, "SUCCEEDED")

    with source.client:
        token_file = web_identity.WebIdentityTokenFile(path, source, duration="10m")
        reason = web_identity.keep_fresh(
            token_file, None, clock=clock, sleep=sleep_then_end_the_run
        )
    assert "operation is not supported" in reason
    assert f"run {agent.run_id}" in reason
    assert 290 <= sleep.waits[0] <= 300  # half of ten minutes (iat is backdated a little)
    assert len(set(tokens)) == 2  # rewritten once before the run ended
    claims = [verify_with_pyjwt(token, server.url, "sts.amazonaws.com") for token in tokens]
    assert claims[0]["jti"] != claims[1]["jti"]
    assert {claim["sub"] for claim in claims} == {f"scoped_principal:platform/user:{agent.uid}"}
