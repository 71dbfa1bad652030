"""Token buckets: the rate grammar, the bucket math on both backends (in process, and the
real Redis on 127.0.0.1:6379) with a manual time source, memory bounds, failing open."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from federation.errors import ConfigurationError, RateLimited
from federation.rate_limits import Buckets, InProcessBuckets, Limits, Rate, RateLimit, parse_rate
from federation.rate_limits.redis_buckets import RedisBuckets
from federation.settings import Settings
from tests.conftest import make_settings
from tests.support import free_port


class Ticker:
    """A time source that moves only when told to."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MakeBuckets = Callable[[Ticker], Buckets]


@pytest.fixture(params=["in-process", "redis"])
def make_buckets(request: pytest.FixtureRequest) -> Iterator[MakeBuckets]:
    """Both backends, on a ticker; Redis ones on this test's own key prefix."""
    if request.param == "in-process":
        yield lambda ticker: InProcessBuckets(now=ticker)
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    made: list[RedisBuckets] = []

    def make(ticker: Ticker) -> Buckets:
        made.append(RedisBuckets.from_url(url, prefix=prefix, now=ticker))
        return made[-1]

    yield make
    for buckets in made:
        buckets.close()


# A wall-clock start, as RedisBuckets uses: the stored stamps must keep sub-ms precision.
START = 1_795_876_795.25


def takes(buckets: Buckets, key: str, rate: Rate, count: int) -> list[bool]:
    return [buckets.take(key, rate).allowed for _ in range(count)]


# ---- the rate grammar ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "per_second", "burst"),
    [
        ("20/s,burst=40", 20.0, 40),
        ("60/m", 1.0, 60),
        ("30/min, burst=5", 0.5, 5),
        ("1/h", 1 / 3600, 1),
        ("0.5/s", 0.5, 1),
        (" 2 / S , Burst = 7 ", 2.0, 7),
        ("120/minute,burst=10", 2.0, 10),
    ],
)
def test_rates_read_as_written(text: str, per_second: float, burst: int) -> None:
    rate = parse_rate(text)
    assert rate is not None
    assert rate.per_second == pytest.approx(per_second)
    assert rate.burst == burst
    assert parse_rate(str(rate)) == rate


@pytest.mark.parametrize("text", ["off", "OFF", " Off "])
def test_off_is_no_limit(text: str) -> None:
    assert parse_rate(text) is None


@pytest.mark.parametrize(
    "text",
    ["", "20", "20/d", "-1/s", "0/s", "20/s,burst=0", "20/s burst=4", "20/s,burst=4,x", "1e3/s"],
)
def test_other_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"COUNT/UNIT|above 0"):
        parse_rate(text)


def test_settings_read_rates_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert str(defaults.rate_limit_key) == "20/s,burst=200"
    assert str(defaults.rate_limit_run) == "5/s,burst=100"
    assert str(defaults.rate_limit_auth_failures) == "5/s,burst=100"
    assert defaults.redis_url is None
    assert defaults.max_header_bytes == 16 * 1024
    monkeypatch.setenv("FEDERATION_RATE_LIMIT_KEY", "off")
    monkeypatch.setenv("FEDERATION_RATE_LIMIT_RUN", "60/m")
    monkeypatch.setenv("FEDERATION_RATE_LIMIT_AUTH_FAILURES", "2/s,burst=7")
    monkeypatch.setenv("FEDERATION_REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0")
    settings = Settings()
    assert settings.rate_limit_key is None
    assert settings.rate_limit_run == Rate(60, "m", burst=60)
    assert settings.rate_limit_auth_failures == Rate(2, "s", burst=7)
    assert "hunter2" not in repr(settings)


def test_a_bad_rate_setting_names_its_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="FEDERATION_RATE_LIMIT_RUN: write a rate"):
        make_settings(tmp_path, rate_limit_run="lots")


# ---- the bucket math, on both backends ---------------------------------------------------


def test_a_full_bucket_allows_its_burst_then_says_when_to_retry(
    make_buckets: MakeBuckets,
) -> None:
    buckets = make_buckets(Ticker(START))
    rate = Rate(2, "s", burst=3)
    assert takes(buckets, "k", rate, 3) == [True, True, True]
    refused = buckets.take("k", rate)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.5, abs=0.001)


def test_a_bucket_refills_at_its_rate_and_never_past_its_burst(
    make_buckets: MakeBuckets,
) -> None:
    ticker = Ticker(START)
    buckets = make_buckets(ticker)
    rate = Rate(2, "s", burst=3)
    takes(buckets, "k", rate, 3)
    ticker.advance(0.25)
    partial = buckets.take("k", rate)
    assert not partial.allowed
    assert partial.retry_after == pytest.approx(0.25, abs=0.001)
    ticker.advance(0.25)
    assert takes(buckets, "k", rate, 2) == [True, False]
    ticker.advance(3600)
    assert takes(buckets, "k", rate, 4) == [True, True, True, False]


def test_a_check_spends_nothing(make_buckets: MakeBuckets) -> None:
    buckets = make_buckets(Ticker(START))
    rate = Rate(1, "m", burst=2)
    assert all(buckets.take("k", rate, cost=0).allowed for _ in range(10))
    assert takes(buckets, "k", rate, 3) == [True, True, False]
    empty = buckets.take("k", rate, cost=0)
    assert not empty.allowed
    assert empty.retry_after == pytest.approx(60, abs=0.01)


def test_keys_have_their_own_buckets(make_buckets: MakeBuckets) -> None:
    buckets = make_buckets(Ticker(START))
    rate = Rate(1, "m", burst=1)
    assert takes(buckets, "a", rate, 2) == [True, False]
    assert takes(buckets, "b", rate, 2) == [True, False]


def test_a_clock_that_steps_back_adds_no_tokens(make_buckets: MakeBuckets) -> None:
    ticker = Ticker(START)
    buckets = make_buckets(ticker)
    rate = Rate(1, "s", burst=2)
    takes(buckets, "k", rate, 2)
    ticker.advance(-30)
    assert not buckets.take("k", rate).allowed
    ticker.advance(30.5)
    assert not buckets.take("k", rate).allowed
    ticker.advance(0.5)
    assert takes(buckets, "k", rate, 2) == [True, False]


def test_concurrent_takes_never_spend_a_token_twice(make_buckets: MakeBuckets) -> None:
    buckets = make_buckets(Ticker(START))
    rate = Rate(1, "h", burst=100)
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = takes(buckets, "k", rate, 40)
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(allowed) == 240
    assert allowed.count(True) == 100


# ---- in process ---------------------------------------------------------------------


def test_only_buckets_short_of_tokens_are_kept() -> None:
    ticker = Ticker(0)
    buckets = InProcessBuckets(now=ticker, sweep_interval=60)
    rate = Rate(1, "s", burst=2)
    buckets.take("looked-at", rate, cost=0)
    assert len(buckets) == 0
    for key in ("a", "b", "c"):
        buckets.take(key, rate)
    assert len(buckets) == 3
    ticker.advance(61)  # every bucket has refilled: the next take sweeps them out
    buckets.take("d", rate)
    assert len(buckets) == 1


def test_memory_is_bounded_and_the_least_recently_used_go_first() -> None:
    buckets = InProcessBuckets(now=Ticker(0), max_buckets=10)
    rate = Rate(1, "h", burst=1)
    for index in range(100):
        buckets.take(f"k{index}", rate)
        assert len(buckets) <= 10
    # The most recent keys are still limited; the oldest were dropped and start full.
    assert not buckets.take("k99", rate).allowed
    assert buckets.take("k0", rate).allowed


# ---- Redis ----------------------------------------------------------------------------


def test_replicas_share_buckets_through_redis(redis_url: str, redis_prefix: str) -> None:
    ticker = Ticker(START)
    first = RedisBuckets.from_url(redis_url, prefix=redis_prefix, now=ticker)
    second = RedisBuckets.from_url(redis_url, prefix=redis_prefix, now=ticker)
    try:
        rate = Rate(1, "m", burst=3)
        assert takes(first, "k", rate, 2) == [True, True]
        assert takes(second, "k", rate, 2) == [True, False]
        assert not first.take("k", rate).allowed
    finally:
        first.close()
        second.close()


def test_redis_keeps_a_bucket_only_until_it_would_be_full(
    redis_url: str, redis_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    buckets = RedisBuckets(client, prefix=redis_prefix, now=Ticker(START))
    try:
        rate = Rate(2, "s", burst=3)
        buckets.take("looked-at", rate, cost=0)
        assert not client.exists(f"{redis_prefix}looked-at")
        buckets.take("k", rate)
        ttl = client.pttl(f"{redis_prefix}k")
        assert 1000 < ttl <= 1500  # half a second to refill one token, plus a second
    finally:
        client.close()


def test_redis_failing_allows_everything_with_one_warning_per_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticker = Ticker(START)
    down = RedisBuckets.from_url(f"redis://127.0.0.1:{free_port()}/0", now=ticker, backoff=5)
    rate = Rate(1, "h", burst=1)
    with caplog.at_level(logging.WARNING, logger="federation.rate_limits"):
        assert takes(down, "k", rate, 3) == [True, True, True]
        assert len(caplog.records) == 1
        assert "rate limits are off for 5 s: Redis failed" in caplog.records[0].getMessage()
        ticker.advance(5)
        assert down.take("k", rate).allowed
        assert len(caplog.records) == 2
    down.close()


# ---- limits ---------------------------------------------------------------------------


def test_a_limit_refuses_with_the_seconds_to_wait() -> None:
    limit = RateLimit("run", Rate(1, "m", burst=1), InProcessBuckets(now=Ticker(0)), refusal="no")
    limit.take("r1")
    with pytest.raises(RateLimited) as refused:
        limit.take("r1")
    assert refused.value.headers == {"Retry-After": "60"}
    assert refused.value.detail == "no (at most 1/m,burst=1)"
    limit.take("r2")


def test_a_limit_that_is_off_never_refuses_and_keeps_nothing() -> None:
    buckets = InProcessBuckets(now=Ticker(0))
    limit = RateLimit("key", None, buckets, refusal="no")
    for _ in range(1000):
        limit.take("k")
        limit.charge("k")
    assert len(buckets) == 0


def test_limits_live_in_redis_when_a_url_is_set(tmp_path: Path, redis_url: str) -> None:
    local = Limits.from_settings(make_settings(tmp_path))
    assert isinstance(local.buckets, InProcessBuckets)
    shared = Limits.from_settings(make_settings(tmp_path, redis_url=redis_url))
    assert isinstance(shared.buckets, RedisBuckets)
    assert shared.key.buckets is shared.run.buckets is shared.auth_failures.buckets
    shared.buckets.close()
