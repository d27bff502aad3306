"""Time the simulator reads (the wall clock in production, a manual one in tests) and the
pace of its steps (`SIM_START` / `SIM_SPEED`: a replay of history, then real time)."""

from __future__ import annotations

import time
from collections.abc import Callable
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


class Pace:
    """When each step is due and the instant it stamps: a replay first, then real time.

    Replay (`start_ms` set): step k stamps `start_ms + k × interval` — an exact grid, so the
    history has no gaps however busy the machine — and is due `k × interval / speed` real
    seconds after the start; a late step runs at once (never skipped). The first step whose
    instant would be past the wall clock ends the replay. Real time: each step stamps the wall
    clock and is due one interval after the last; a step more than an interval late skips
    ahead (counted in `late_steps`). Both clocks are injectable, so tests need no sleeps.
    """

    def __init__(
        self,
        *,
        interval_s: float,
        wall: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        start_ms: int | None = None,
        speed: float = 1.0,
    ) -> None:
        self._interval_s, self._wall, self._monotonic = interval_s, wall, monotonic
        self._start_ms, self._speed = start_ms, speed
        self._replayed = 0
        self._began = self._next_due = monotonic()
        self.replaying = start_ms is not None
        self.late_steps = 0

    def wait_s(self) -> float:
        """Real seconds until the next step is due (0 when it is late)."""
        if self.replaying:
            due = self._began + self._replayed * self._interval_s / self._speed
        else:
            due = self._next_due
        return max(0.0, due - self._monotonic())

    def behind_s(self) -> float:
        """How far a replay lags its schedule, in real seconds (0 in real time)."""
        if not self.replaying:
            return 0.0
        due = self._began + self._replayed * self._interval_s / self._speed
        return max(0.0, self._monotonic() - due)

    def take(self) -> int:
        """The instant of the step that runs now (epoch ms); the schedule moves on."""
        if self.replaying:
            assert self._start_ms is not None
            stamp = self._start_ms + round(self._replayed * self._interval_s * 1000)
            if stamp <= self._wall.now_ms():
                self._replayed += 1
                return stamp
            self.replaying = False  # caught up with now: real time from here on
            self._next_due = self._monotonic()
        stamp = self._wall.now_ms()
        now = self._monotonic()
        if now - self._next_due > self._interval_s:  # a whole interval behind: skip ahead
            self.late_steps += 1
            self._next_due = now
        self._next_due += self._interval_s
        return stamp
