"""A replay (SIM_START / SIM_SPEED) with real processes lands historical readings in the DB."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid

import asyncpg

from tests.support.day import replay_day
from tests.support.stack import DEVICE_SECRET, Service

HOUR_MS = 3_600_000


async def test_a_replayed_hour_lands_on_its_grid_then_the_simulator_goes_on_in_real_time(
    gateway: Service, ingestion: Service, db: asyncpg.Connection
) -> None:
    prefix = f"r{uuid.uuid4().hex[:6]}-"
    start_ms = (time.time_ns() // 1_000_000 - HOUR_MS) // 1000 * 1000  # an hour ago
    simulator = Service(
        "simulator",
        {
            "MEGAPACK_COUNT": "4", "EV_COUNT": "0", "SITE_COUNT": "1", "SIM_SEED": "3",
            "FAULT_RATE": "0", "SIM_ID_PREFIX": prefix, "TELEMETRY_INTERVAL_S": "5",
            "SIM_START": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_ms / 1000)),
            "SIM_SPEED": "2000", "GATEWAY_URL": gateway.url, "DEVICE_API_KEY": DEVICE_SECRET,
            "STATS_INTERVAL_S": "0.5", "LOG_FORMAT": "json",
        },
        "--no-agent",
    ).start()  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        live = 0
        while live < 8 and time.monotonic() < deadline:  # two real-time steps of 4 units
            simulator.assert_running()
            live = await db.fetchval(
                "SELECT count(*) FROM megapack_telemetry WHERE unit_id LIKE $1"
                " AND time > now() - interval '1 minute'",
                prefix + "%",
            )
            await asyncio.sleep(0.5)
        assert live >= 8, simulator.output()
    finally:
        simulator.stop()
    rows = await db.fetch(
        "SELECT unit_id, (extract(epoch FROM time) * 1000)::bigint AS at_ms, state, power_kw"
        " FROM megapack_telemetry WHERE unit_id LIKE $1 ORDER BY unit_id, time",
        prefix + "%",
    )
    history = [r for r in rows if r["at_ms"] < start_ms + HOUR_MS - 60_000]
    # the hour is all there, on the 5 s grid from SIM_START, for every unit
    assert len(history) >= 4 * (HOUR_MS - 60_000) // 5_000
    for unit in {r["unit_id"] for r in rows}:
        stamps = [r["at_ms"] for r in history if r["unit_id"] == unit]
        assert stamps[0] == start_ms
        assert all(b - a == 5_000 for a, b in itertools.pairwise(stamps))
    assert all(r["power_kw"] != 0 for r in rows)
    caught_up = [line for line in simulator.output().splitlines() if "replay_caught_up" in line]
    assert caught_up, simulator.output()
    assert json.loads(caught_up[0])["steps"] >= HOUR_MS // 5_000


async def test_a_simulated_day_replays_whole_and_reports_the_ratings(
    gateway: Service, ingestion: Service, db: asyncpg.Connection
) -> None:
    prefix = f"d{uuid.uuid4().hex[:6]}-"
    fleet, seconds, _ = await replay_day(
        db=db, gateway_url=gateway.url, units=4, seed=9, id_prefix=prefix, interval_s=30.0
    )
    assert seconds < 600
    rows = await db.fetch(
        "SELECT unit_id, rated_power_kw, capacity_kwh FROM units WHERE unit_id LIKE $1",
        prefix + "%",
    )
    assert {r["unit_id"]: (r["rated_power_kw"], r["capacity_kwh"]) for r in rows} == {
        unit_id: (spec.rated_power_kw, spec.capacity_kwh) for unit_id, spec in fleet.units.items()
    }
