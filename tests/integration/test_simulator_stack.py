"""`python -m simulator` against the real gateway, broker, ingestion and database."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import pytest

from tests.support.readings import wait_rows
from tests.support.stack import DEVICE_SECRET, Service

MEGAPACKS, EVS, INTERVAL_S, DURATION_S = 6, 4, 0.5, 3.0
STEPS = int(DURATION_S / INTERVAL_S)


def summary(output: str) -> dict[str, object]:
    for line in output.splitlines():
        if '"sim_summary"' in line:
            parsed: dict[str, object] = json.loads(line)
            return parsed
    raise AssertionError(f"no sim_summary line in:\n{output}")


@pytest.mark.parametrize("telemetry_format", ["json", "protobuf"])
async def test_a_timed_run_lands_one_row_per_unit_and_interval(
    gateway: Service, ingestion: Service, db: asyncpg.Connection, telemetry_format: str
) -> None:
    prefix = f"s{uuid.uuid4().hex[:6]}-"
    simulator = Service(
        "simulator",
        {
            "MEGAPACK_COUNT": str(MEGAPACKS),
            "EV_COUNT": str(EVS),
            "SITE_COUNT": "2",
            "TELEMETRY_INTERVAL_S": str(INTERVAL_S),
            "SIM_DURATION_S": str(DURATION_S),
            "SIM_SEED": "42",
            "FAULT_RATE": "0",
            "GATEWAY_URL": gateway.url,
            "DEVICE_API_KEY": DEVICE_SECRET,
            "SIM_ID_PREFIX": prefix,
            "LOG_FORMAT": "json",
        },
        "--no-agent",
        "--format",
        telemetry_format,
    ).start()
    assert simulator.process is not None
    assert simulator.process.wait(30) == 0, simulator.output()
    totals = summary(simulator.output())
    expected = STEPS * (MEGAPACKS + EVS)
    assert totals["accepted"] == totals["generated"] == expected
    assert totals["dropped"] == totals["rejected"] == 0
    mp_rows = await wait_rows(db, "megapack_telemetry", prefix, STEPS * MEGAPACKS)
    ev_rows = await wait_rows(db, "ev_telemetry", prefix, STEPS * EVS)
    assert (mp_rows, ev_rows) == (STEPS * MEGAPACKS, STEPS * EVS)
    sites = await db.fetch(
        "SELECT site_id, count(DISTINCT unit_id) AS units FROM megapack_telemetry"
        " WHERE unit_id LIKE $1 GROUP BY site_id ORDER BY site_id",
        prefix + "%",
    )
    assert [(r["site_id"], r["units"]) for r in sites] == [("SITE-01", 3), ("SITE-02", 3)]
    kinds = await db.fetchval("SELECT count(*) FROM units WHERE unit_id LIKE $1", prefix + "%")
    assert kinds == MEGAPACKS + EVS


async def test_sigterm_stops_with_a_summary(gateway: Service) -> None:
    simulator = Service(
        "simulator",
        {
            "MEGAPACK_COUNT": "2",
            "EV_COUNT": "1",
            "TELEMETRY_INTERVAL_S": "0.2",
            "GATEWAY_URL": gateway.url,
            "DEVICE_API_KEY": DEVICE_SECRET,
            "SIM_ID_PREFIX": f"t{uuid.uuid4().hex[:6]}-",
            "STATS_INTERVAL_S": "0.5",
        },
        "--no-agent",
    ).start()
    await _wait_for(simulator, '"sim_stats"')
    assert simulator.stop() == 0
    totals = summary(simulator.output())
    assert isinstance(totals["accepted"], int)
    assert totals["accepted"] > 0
    assert totals["accepted"] == totals["generated"]


async def _wait_for(service: Service, text: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in service.output():
        service.assert_running()
        assert time.monotonic() < deadline, f"{text} never logged:\n{service.output()}"
        await asyncio.sleep(0.1)
