"""One simulated day of a fault-free Megapack fleet: in-process, or replayed through a stack.

`simulate_day` steps a `Fleet` in process (physics tests). `replay_day` runs the real
simulator against a running gateway with SIM_START one day back and a high SIM_SPEED, and
returns when every reading of that day is in the database: what a KPI test joins to
`GET /v1/kpis`. Both describe the fleet they played (`DayFleet`): unit id → model, rated
power, capacity and configured round-trip efficiency, from the same seed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from simulator.fleet import Fleet
from simulator.physics import Physics
from tests.support.stack import DEVICE_SECRET, Service

DAY_S = 86_400
DAY_MS = DAY_S * 1000


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """What a unit was configured with."""

    model: str  # "2-hour" / "4-hour"
    rated_power_kw: float
    capacity_kwh: float
    round_trip_efficiency: float  # the unit's own, within ±0.2 points of its model's


@dataclass(frozen=True, slots=True)
class DayFleet:
    """The fleet a day was played with, and the day."""

    start_ms: int
    interval_s: float
    units: Mapping[str, UnitSpec]

    @property
    def end_ms(self) -> int:
        """The instant after the day's last reading."""
        return self.start_ms + DAY_MS


def fleet_for_day(
    *, units: int, seed: int, sites: int = 2, id_prefix: str = "", physics: Physics | None = None
) -> Fleet:
    """The fault-free Megapack fleet both ways of playing a day use."""
    return Fleet(
        megapack_count=units, ev_count=0, site_count=sites, fleet_count=1, seed=seed,
        fault_rate_per_h=0.0, id_prefix=id_prefix, physics=physics,
    )  # fmt: skip


def describe(fleet: Fleet, *, start_ms: int, interval_s: float) -> DayFleet:
    """Each unit's configuration (known before a single step: it comes from the seed)."""
    specs = {
        unit_id: UnitSpec(
            unit.model.name, unit.rated_power_kw, unit.capacity_kwh,
            unit.traits.round_trip_efficiency,
        )
        for unit_id, unit in fleet.megapacks.items()
    }  # fmt: skip
    return DayFleet(start_ms=start_ms, interval_s=interval_s, units=specs)


def simulate_day(
    *,
    units: int,
    seed: int,
    start_ms: int,
    interval_s: float = 10.0,
    physics: Physics | None = None,
    closing_steps: int = 0,
) -> tuple[DayFleet, list[dict[str, Any]]]:
    """Step a fault-free fleet through one day in process: (the fleet, every reading).
    `physics` as the simulator's SIM_* settings make it (default: their defaults);
    `closing_steps` more readings after the day (the next reading closes its last interval)."""
    fleet = fleet_for_day(units=units, seed=seed, physics=physics)
    readings: list[dict[str, Any]] = []
    steps = round(DAY_S / interval_s) + closing_steps
    for step in range(steps):
        emission = fleet.step(start_ms + round(step * interval_s * 1000), default_dt_s=interval_s)
        for batch in emission.sites.values():
            readings.extend(batch)
    return describe(fleet, start_ms=start_ms, interval_s=interval_s), readings


async def replay_day(
    *,
    db: asyncpg.Connection,
    gateway_url: str,
    units: int,
    seed: int,
    id_prefix: str,
    interval_s: float = 10.0,
    speed: float = 20_000.0,
    timeout_s: float = 600.0,
) -> tuple[DayFleet, float, str]:
    """Replay the last whole day of a fault-free fleet into a running stack; returns the
    fleet, the seconds until every reading had landed, and the simulator's output.

    The day starts at the last UTC midnight more than a day ago, so it is whole and in the
    past; SIM_DURATION_S stops the simulator at its end. A unit id prefix keeps runs apart.
    """
    now_ms = time.time_ns() // 1_000_000
    start_ms = now_ms - now_ms % DAY_MS - DAY_MS
    fleet = describe(
        fleet_for_day(units=units, seed=seed, id_prefix=id_prefix),
        start_ms=start_ms,
        interval_s=interval_s,
    )
    expected = units * round(DAY_S / interval_s)
    simulator = Service(
        "simulator",
        {
            "MEGAPACK_COUNT": str(units), "EV_COUNT": "0", "SITE_COUNT": "2",
            "SIM_SEED": str(seed), "FAULT_RATE": "0", "SIM_ID_PREFIX": id_prefix,
            "TELEMETRY_INTERVAL_S": str(interval_s), "SIM_DURATION_S": str(DAY_S),
            "SIM_START": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_ms / 1000)),
            "SIM_SPEED": str(speed), "GATEWAY_URL": gateway_url,
            "DEVICE_API_KEY": DEVICE_SECRET, "TELEMETRY_FORMAT": "protobuf",
            "LOG_FORMAT": "json",
        },
        "--no-agent",
    ).start()  # fmt: skip
    began = time.monotonic()
    try:
        landed = 0
        while time.monotonic() - began < timeout_s:
            landed = await db.fetchval(
                "SELECT count(*) FROM megapack_telemetry WHERE unit_id LIKE $1"
                " AND time >= $2 AND time < $3",
                id_prefix + "%", _instant(start_ms), _instant(fleet.end_ms),
            )  # fmt: skip
            if landed >= expected:
                return fleet, time.monotonic() - began, simulator.output()
            assert simulator.process is not None
            if simulator.process.poll() not in (None, 0):
                break
            await asyncio.sleep(0.5)
        raise AssertionError(f"{landed} of {expected} readings landed:\n{simulator.output()}")
    finally:
        simulator.stop()


def _instant(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)
