"""Token buckets in this process's memory: exact, and per worker process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from federation.domain.rates import Rate
from federation.rate_limits.buckets import Decision, refilled, taken

# A bucket refills within burst / rate seconds, so few buckets are short of tokens at
# any moment; this many is about 20 MB, and the least recently used beyond go first.
MAX_BUCKETS = 100_000
SWEEP_INTERVAL = 60.0  # seconds between sweeps of buckets that have refilled


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    rate: Rate


class InProcessBuckets:
    """A dict of buckets under a lock (issue-token runs on the event loop and in
    threads). Only buckets short of tokens are kept, and memory is bounded: refilled
    buckets are swept out every ``sweep_interval`` seconds, and past ``max_buckets`` the
    least recently used are dropped (a dropped bucket starts full again)."""

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        self._now = now
        self.max_buckets = max_buckets
        self.sweep_interval = sweep_interval
        self._buckets: dict[str, _Bucket] = {}  # NOTE: in order of last use
        self._lock = threading.Lock()
        self._swept = now()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        with self._lock:
            now = self._now()
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                tokens, stamp = float(rate.burst), now
            else:
                tokens, stamp = refilled(bucket.tokens, bucket.stamp, now, rate)
            decision, tokens = taken(tokens, rate, cost)
            if tokens < rate.burst:
                self._buckets[key] = _Bucket(tokens, stamp, rate)  # now the most recent
            if now - self._swept >= self.sweep_interval or len(self._buckets) > self.max_buckets:
                self._sweep(now)
            return decision

    def _sweep(self, now: float) -> None:
        self._swept = now
        for key, bucket in list(self._buckets.items()):
            if refilled(bucket.tokens, bucket.stamp, now, bucket.rate)[0] >= bucket.rate.burst:
                del self._buckets[key]
        # NOTE: down to nine tenths, so that a flood of new keys sweeps once per many
        # requests, not on every one.
        excess = len(self._buckets) - self.max_buckets * 9 // 10
        for key in list(self._buckets)[: max(0, excess)]:
            del self._buckets[key]
