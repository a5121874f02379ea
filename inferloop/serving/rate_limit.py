"""The per-key rate limit: a token bucket per API key.

Each key's bucket holds up to `burst` requests and refills at `rate` requests per second; a
request takes one. A key whose bucket is empty is told how many whole seconds to wait (the
`Retry-After` of its 429). Buckets are keyed by the key's SHA-256 hash, as the keys file stores
it: the key itself is never held here. Only keys that passed authentication reach a bucket, so
there are at most as many buckets as keys in the keys file.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float  # clock time of the last refill


class RateLimiter:
    """`rate` requests per second per key on average, up to `burst` at once; rate 0: no limit.
    Called from the event loop only (one thread), so it takes no lock."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, _Bucket] = {}

    def retry_after(self, key_sha256: str) -> int | None:
        """Take one request from the key's bucket: None when it is allowed, else the whole
        seconds (at least 1) after which it would be."""
        if self.rate <= 0:
            return None
        now = self.clock()
        bucket = self._buckets.get(key_sha256)
        if bucket is None:
            bucket = self._buckets[key_sha256] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))
