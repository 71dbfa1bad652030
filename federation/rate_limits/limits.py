"""The issuer's limits: per API key and per run on issuing, failed authentications per
client address, API keys created per principal; each a :class:`RateLimit` on one shared
backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from federation.domain.rates import Rate
from federation.errors import RateLimited
from federation.rate_limits.buckets import Buckets
from federation.rate_limits.in_process import InProcessBuckets

if TYPE_CHECKING:
    from federation.settings import Settings

KEY_REFUSAL = "too many token requests with this API key"
RUN_REFUSAL = "too many token requests for this run"
AUTH_REFUSAL = "too many failed authentications from this address"
KEY_CREATION_REFUSAL = "too many API keys created by this principal"


class RateLimit:
    """One limit: ``rate`` (``None``: off) on ``buckets``, for keys of one kind."""

    def __init__(self, name: str, rate: Rate | None, buckets: Buckets, *, refusal: str) -> None:
        self.name = name
        self.rate = rate
        self.buckets = buckets
        self.refusal = refusal  # NOTE: "... this API key": never the key itself

    def take(self, key: str) -> None:
        """Spend a token of ``key``'s bucket, or raise :class:`RateLimited`."""
        self._decide(key, 1)

    def check(self, key: str) -> None:
        """Raise :class:`RateLimited` if ``key``'s bucket is empty; spend nothing."""
        self._decide(key, 0)

    def charge(self, key: str) -> None:
        """Spend a token of ``key``'s bucket if it has one (after the fact: no refusal)."""
        if self.rate is not None:
            self.buckets.take(f"{self.name}:{key}", self.rate, 1)

    def _decide(self, key: str, cost: int) -> None:
        if self.rate is None:
            return
        decision = self.buckets.take(f"{self.name}:{key}", self.rate, cost)
        if not decision.allowed:
            raise RateLimited(
                f"{self.refusal} (at most {self.rate})",
                retry_after=decision.retry_after,
            )


@dataclass(frozen=True)
class Limits:
    """Every limit of one application; ``buckets`` is shared by all of them."""

    key: RateLimit
    run: RateLimit
    auth_failures: RateLimit
    key_creation: RateLimit
    buckets: Buckets

    @classmethod
    def from_settings(cls, settings: Settings, *, buckets: Buckets | None = None) -> Limits:
        """Limits from ``FEDERATION_RATE_LIMIT_*``, in Redis when ``FEDERATION_REDIS_URL``
        is set, else in this process (no I/O here: Redis is reached on first use)."""
        if buckets is None:
            buckets = InProcessBuckets()
            if settings.redis_url is not None:
                from federation.rate_limits.redis_buckets import RedisBuckets

                buckets = RedisBuckets.from_url(settings.redis_url.get_secret_value())
        return cls(
            key=RateLimit("key", settings.rate_limit_key, buckets, refusal=KEY_REFUSAL),
            run=RateLimit("run", settings.rate_limit_run, buckets, refusal=RUN_REFUSAL),
            auth_failures=RateLimit(
                "auth", settings.rate_limit_auth_failures, buckets, refusal=AUTH_REFUSAL
            ),
            key_creation=RateLimit(
                "key-creation",
                settings.rate_limit_key_creation,
                buckets,
                refusal=KEY_CREATION_REFUSAL,
            ),
            buckets=buckets,
        )

    @classmethod
    def off(cls) -> Limits:
        """No limits (a library user's :class:`TokenIssuer`, in-process tools)."""
        buckets = InProcessBuckets()
        return cls(
            key=RateLimit("key", None, buckets, refusal=KEY_REFUSAL),
            run=RateLimit("run", None, buckets, refusal=RUN_REFUSAL),
            auth_failures=RateLimit("auth", None, buckets, refusal=AUTH_REFUSAL),
            key_creation=RateLimit("key-creation", None, buckets, refusal=KEY_CREATION_REFUSAL),
            buckets=buckets,
        )
