"""Token buckets in Redis, shared by every worker and replica.

One Lua script per take reads, refills, takes and writes a bucket atomically, so two
replicas never both spend the last token. A bucket is a hash (``tokens``, ``stamp``)
that expires when it would have refilled: a full bucket is the same as none, so Redis
holds only the buckets short of tokens.

Redis is not allowed to take the issuer down: when it fails, every take is allowed
(fail open) with one logged warning, and Redis is left alone for ``backoff`` seconds,
so an outage costs one timeout per back-off, not one per request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from federation.domain.rates import Rate
from federation.rate_limits.buckets import ALLOWED, Decision

log = logging.getLogger("federation.rate_limits")

PREFIX = "federation:limits:"
# NOTE: a loopback Redis answers in well under a millisecond; these bound what a Redis
# that hangs can cost a request (on SQLite, issue-token runs on the event loop).
TIMEOUT = 0.25
BACKOFF = 5.0

# KEYS[1] bucket; ARGV rate per second, burst, now (seconds), cost. Returns
# {allowed (0/1), milliseconds until a token is due}.
TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tokens = burst
local stamp = now
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
if saved[1] and saved[2] then
  tokens = tonumber(saved[1])
  stamp = tonumber(saved[2])
  if now > stamp then
    tokens = math.min(burst, tokens + (now - stamp) * rate)
    stamp = now
  end
end
if tokens < 1 then
  return {0, math.ceil((1 - tokens) / rate * 1000)}
end
if cost > 0 then
  tokens = tokens - cost
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
             'stamp', string.format('%.17g', stamp))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
end
return {1, 0}
"""


class RedisBuckets:
    """Buckets under ``prefix`` in Redis. ``now`` is wall-clock time (replicas share
    it; one that lags adds no tokens), injected for tests."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = PREFIX,
        now: Callable[[], float] = time.time,
        backoff: float = BACKOFF,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._now = now
        self.backoff = backoff
        self._script = client.register_script(TAKE)
        self._down_until = -math.inf
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisBuckets:
        """Buckets on the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``);
        timeouts in its query string win over the defaults. Connects on first use."""
        client = redis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # NOTE: fail open at once; the next take tries again
        )
        return cls(client, **options)

    def take(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        now = self._now()
        if now < self._down_until:
            return ALLOWED
        try:
            allowed, wait_ms = self._script(
                keys=[self.prefix + key], args=[repr(rate.per_second), rate.burst, repr(now), cost]
            )
        except RedisError as exc:
            with self._lock:
                if now >= self._down_until:
                    self._down_until = now + self.backoff
                    log.warning(
                        "rate limits are off for %.0f s: Redis failed (%s: %s)",
                        self.backoff,
                        type(exc).__name__,
                        exc,
                    )
            return ALLOWED
        return ALLOWED if allowed else Decision(allowed=False, retry_after=int(wait_ms) / 1000)

    def close(self) -> None:
        self.client.close()
