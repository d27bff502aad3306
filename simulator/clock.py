"""Time the simulator reads: the wall clock in production, a manual one in tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Epoch milliseconds now."""

    def now_ms(self) -> int: ...


class WallClock:
    """The real time."""

    def now_ms(self) -> int:
        """Epoch milliseconds from the system clock."""
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to (deterministic tests)."""

    def __init__(self, start_ms: int) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        """The current manual time."""
        return self._now_ms

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now_ms += round(seconds * 1000)
