"""The simulation loop: step the fleet every interval, hand readings to the sender, report."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

import structlog

from simulator.clock import Clock
from simulator.fleet import Emission, Fleet
from simulator.stats import Stats

log = structlog.get_logger("simulator")


class Outlet(Protocol):
    """Where readings go (simulator.sender.Sender)."""

    def submit(self, emission: Emission) -> None: ...

    @property
    def buffered(self) -> int: ...


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
) -> int:
    """Run until `stop` is set or `duration_s` has passed; returns the number of steps."""
    started = time.monotonic()
    next_tick = started
    window_start = started
    steps = late_steps = 0
    while not stop.is_set():
        if duration_s and steps * interval_s >= duration_s:
            break
        now_ms = clock.now_ms()
        emission = fleet.step(now_ms, default_dt_s=interval_s)
        steps += 1
        stats.generated += emission.count
        outlet.submit(emission)
        if agent is not None:
            agent.after_step(now_ms=now_ms)
        now = time.monotonic()
        if now - window_start >= stats_interval_s:
            line = stats.window(now - window_start, buffered=outlet.buffered)
            log.info("sim_stats", late_steps=late_steps, **line)
            window_start, late_steps = now, 0
        next_tick += interval_s
        delay = next_tick - time.monotonic()
        if delay < 0:  # the machine cannot keep the pace: skip ahead, count it in the stats line
            late_steps += 1
            next_tick = time.monotonic()
            delay = 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return steps
