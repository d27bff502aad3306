"""Per-key token buckets counted in readings."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """Allow `rate` readings/s per key with bursts of `burst_s` seconds' worth."""

    def __init__(
        self, *, rate: float, burst_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._capacity = rate * burst_s
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, readings: int) -> float:
        """Spend tokens; returns 0 when allowed, else the seconds to wait before retrying."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        needed = min(readings, self._capacity)  # a batch larger than a burst may run into debt
        if needed > tokens:
            self._buckets[key] = (tokens, now)
            return max(1.0, math.ceil((needed - tokens) / self._rate))
        self._buckets[key] = (tokens - readings, now)
        return 0.0
