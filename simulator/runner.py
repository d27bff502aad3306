"""The simulation loop: step the fleet at its pace, hand readings to the sender, report."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Protocol

import structlog

from simulator.clock import Clock, Pace
from simulator.fleet import Emission, Fleet
from simulator.stats import Stats

log = structlog.get_logger("simulator")


class Outlet(Protocol):
    """Where readings go (simulator.sender.Sender)."""

    def submit(self, emission: Emission) -> None: ...

    @property
    def buffered(self) -> int: ...

    async def wait_below(self, readings: int) -> None: ...


class Agent(Protocol):
    """Answers to commands once their effect shows (simulator.agent.UnitAgent + transport)."""

    def after_step(self, *, now_ms: int) -> None: ...


async def simulate(
    *,
    fleet: Fleet,
    outlet: Outlet,
    stats: Stats,
    clock: Clock,
    stop: asyncio.Event,
    interval_s: float,
    duration_s: float = 0.0,
    stats_interval_s: float = 5.0,
    agent: Agent | None = None,
    pace: Pace | None = None,
    backlog_readings: int = 10_000,
) -> int:
    """Run until `stop` is set or `duration_s` (simulated) has passed; returns the steps.

    `pace` replays history first (SIM_START / SIM_SPEED); while it does, a step waits until
    the outlet holds at most `backlog_readings`, so a fast replay is as fast as the pipeline
    takes readings and never overflows the sender's buffer. The agent always sees the wall
    clock (commands live in real time, whatever instant the fleet is at).
    """
    pace = pace or Pace(interval_s=interval_s, wall=clock)
    window_start = time.monotonic()
    steps = late_seen = 0
    replaying = pace.replaying
    while not stop.is_set():
        if duration_s and steps * interval_s >= duration_s:
            break
        delay = pace.wait_s()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
        if pace.replaying:
            await outlet.wait_below(backlog_readings)
        now_ms = pace.take()
        if replaying and not pace.replaying:
            log.info("replay_caught_up", steps=steps, at=_iso(now_ms))
        replaying = pace.replaying
        emission = fleet.step(now_ms, default_dt_s=interval_s)
        steps += 1
        stats.generated += emission.count
        outlet.submit(emission)
        if agent is not None:
            agent.after_step(now_ms=clock.now_ms() if replaying else now_ms)
        now = time.monotonic()
        if now - window_start >= stats_interval_s:
            line = stats.window(now - window_start, buffered=outlet.buffered)
            late, late_seen = pace.late_steps - late_seen, pace.late_steps
            extra = {"sim_time": _iso(now_ms), "behind_s": round(pace.behind_s(), 1)}
            log.info("sim_stats", late_steps=late, replaying=replaying, **extra, **line)
            window_start = now
        await asyncio.sleep(0)  # let the sender's workers run between steps of a fast replay
    return steps


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")
