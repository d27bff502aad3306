"""The simulation loop: steps at the interval, stops after the duration, tells the agent."""

from __future__ import annotations

import asyncio

from simulator.clock import ManualClock
from simulator.fleet import Emission, Fleet
from simulator.runner import simulate
from simulator.stats import Stats


class Collect:
    """An outlet that keeps what it is given."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.emissions: list[Emission] = []

    def submit(self, emission: Emission) -> None:
        self.emissions.append(emission)
        self.clock.advance(1.0)

    @property
    def buffered(self) -> int:
        return 0

    async def wait_below(self, readings: int) -> None:
        return None


class Steps:
    """An agent that records when it was asked to look at the fleet."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def after_step(self, *, now_ms: int) -> None:
        self.seen.append(now_ms)


async def test_a_timed_run_steps_duration_over_interval_times_with_the_clocks_time() -> None:
    clock = ManualClock(1_767_225_600_000)
    fleet = Fleet(megapack_count=3, ev_count=2, site_count=1, fleet_count=1, seed=1,
                  fault_rate_per_h=0.0)  # fmt: skip
    outlet, agent, stats = Collect(clock), Steps(), Stats()
    steps = await simulate(
        fleet=fleet, outlet=outlet, stats=stats, clock=clock, stop=asyncio.Event(),
        interval_s=0.01, duration_s=0.05, agent=agent,
    )  # fmt: skip
    assert steps == 5
    assert stats.generated == 5 * 5
    stamps = [e.sites["SITE-01"][0]["timestamp"] for e in outlet.emissions]
    assert stamps == [1_767_225_600_000 + i * 1000 for i in range(5)]
    assert agent.seen == stamps


async def test_stop_ends_the_run() -> None:
    clock = ManualClock(0)
    fleet = Fleet(megapack_count=1, ev_count=0, site_count=1, fleet_count=1, seed=1,
                  fault_rate_per_h=0.0)  # fmt: skip
    stop = asyncio.Event()
    stop.set()
    steps = await simulate(fleet=fleet, outlet=Collect(clock), stats=Stats(), clock=clock,
                           stop=stop, interval_s=0.01)  # fmt: skip
    assert steps == 0
