"""Rate limits: token buckets by key, in this process or shared through Redis.

One backend serves every limit of an application:

    Rate              ``20/s,burst=40``: tokens per second and the most held at once
    Buckets           the backend: ``take(key, rate, cost) -> Decision``
    ├── InProcessBuckets   a dict in this process (per worker), bounded in memory
    └── RedisBuckets       one atomic Lua script per take, shared by every replica;
                           fails open when Redis fails
    RateLimit         one limit on a backend: ``take``/``check`` raise ``RateLimited``
    Limits            the issuer's: per API key, per run, failed authentications,
                      API keys created per principal
"""

from __future__ import annotations

from federation.domain.rates import Rate, parse_rate
from federation.rate_limits.buckets import ALLOWED, Buckets, Decision
from federation.rate_limits.in_process import InProcessBuckets
from federation.rate_limits.limits import Limits, RateLimit

# NOTE: RedisBuckets is imported from federation.rate_limits.redis_buckets: importing
# redis costs every CLI command a tenth of a second, and only a server with
# FEDERATION_REDIS_URL needs it.

__all__ = [
    "ALLOWED",
    "Buckets",
    "Decision",
    "InProcessBuckets",
    "Limits",
    "Rate",
    "RateLimit",
    "parse_rate",
]
