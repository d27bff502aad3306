"""Per-key token buckets."""

from __future__ import annotations

from api_gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refusal_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=100, burst_s=2, clock=clock)
    assert limiter.take("a", 150) == 0
    assert limiter.take("a", 50) == 0
    wait = limiter.take("a", 50)
    assert wait >= 1
    assert limiter.take("b", 200) == 0, "keys have their own buckets"
    clock.now += 0.5
    assert limiter.take("a", 50) == 0


def test_batch_larger_than_a_burst_passes_on_a_full_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst_s=1, clock=clock)
    assert limiter.take("a", 100) == 0
    assert limiter.take("a", 1) > 0
    clock.now += 5.0
    assert limiter.take("a", 1) > 0, "the debt of 90 readings takes 9 s to pay back"
    clock.now += 4.2
    assert limiter.take("a", 1) == 0


def test_zero_rate_means_no_limit() -> None:
    limiter = RateLimiter(rate=0, burst_s=1)
    assert all(limiter.take("a", 10_000) == 0 for _ in range(100))
