"""A site's history in 1-minute buckets (`GET /v1/sites/{site_id}/telemetry`'s SQL), on the
real database: summed over the site's Megapacks, each the same from the raw rows (how plain
PostgreSQL reads it) and from `megapack_telemetry_1m` (the TimescaleDB way)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from db import monitoring_sites as sql
from tests.integration.test_monitoring_api import (  # noqa: F401 (the running service's fixtures)
    known_units,
    monitoring,
    ops,
    service_database,
)
from tests.integration.test_monitoring_report import add_megapack

DEFAULT_CAPACITY_KWH = 3854.0
BIG_KWH = 5000.0


@pytest.fixture
async def site(fresh_database: str) -> AsyncIterator[tuple[asyncpg.Connection, datetime]]:
    """Three minutes, a reading every 10 s: MP-C charging at 200 kW from SOC 40 up, MP-D (5 MWh)
    discharging at 300 kW from SOC 80 down; MP-X, on another site, must not count."""
    conn = await asyncpg.connect(fresh_database)
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    for step in range(18):
        at = start + timedelta(seconds=10 * step)
        await add_megapack(conn, unit_id="MP-C", site_id="SITE-H", at=at, soc=40 + step,
                           power_kw=-200, temperature_c=30, state="CHARGING")  # fmt: skip
        await add_megapack(conn, unit_id="MP-D", site_id="SITE-H", at=at, soc=80 - step,
                           power_kw=300, temperature_c=35 + step, state="DISCHARGING",
                           capacity_kwh=BIG_KWH)  # fmt: skip
        await add_megapack(conn, unit_id="MP-X", site_id="SITE-Y", at=at, soc=50, power_kw=999)
    yield conn, start
    await conn.close()


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.mark.parametrize("source", sorted(sql.SITE_HISTORY))
async def test_a_site_minute_sums_its_units(
    site: tuple[asyncpg.Connection, datetime], source: str
) -> None:
    conn, start = site
    rows = await conn.fetch(
        sql.SITE_HISTORY[source], "SITE-H", start, start + timedelta(minutes=5),
        DEFAULT_CAPACITY_KWH, 100,
    )  # fmt: skip
    assert [row["bucket"] for row in rows] == [start + timedelta(minutes=m) for m in range(3)]
    for minute, row in enumerate(rows):
        steps = range(6 * minute, 6 * minute + 6)
        soc_c, soc_d = _mean([40 + s for s in steps]), _mean([80 - s for s in steps])
        assert row["units"] == 2
        assert (row["net_power_mw"], row["charging_mw"], row["discharging_mw"]) == (
            pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.3),
        )  # fmt: skip
        energy_kwh = soc_c / 100 * DEFAULT_CAPACITY_KWH + soc_d / 100 * BIG_KWH
        assert row["energy_stored_mwh"] == pytest.approx(energy_kwh / 1000)
        assert row["soc_mean_percent"] == pytest.approx((soc_c + soc_d) / 2)
        assert (row["soc_min_percent"], row["soc_max_percent"]) == (
            40 + 6 * minute,
            80 - 6 * minute,
        )
        assert row["temperature_max_c"] == 35 + 6 * minute + 5


async def test_the_history_keeps_to_its_range_and_limit(
    site: tuple[asyncpg.Connection, datetime],
) -> None:
    conn, start = site
    minute = timedelta(minutes=1)
    rows = await sql.site_history(
        conn, site_id="SITE-H", start=start + minute, end=start + 2 * minute,
        capacity_kwh=DEFAULT_CAPACITY_KWH, limit=10,
    )  # fmt: skip
    assert [row["bucket"] for row in rows] == [start + minute]
    rows = await sql.site_history(
        conn, site_id="SITE-H", start=start, end=start + 3 * minute,
        capacity_kwh=DEFAULT_CAPACITY_KWH, limit=2,
    )  # fmt: skip
    assert [row["bucket"] for row in rows] == [start, start + minute]
    assert await sql.site_units(conn, site_id="SITE-H") == 2
    assert await sql.site_units(conn, site_id="SITE-NONE") == 0


async def test_site_telemetry_over_http_in_whole_minutes(
    ops: httpx.AsyncClient,  # noqa: F811 (the fixtures imported above)
    known_units: dict[str, object],  # noqa: F811
) -> None:
    now = known_units["now"]
    assert isinstance(now, datetime)
    expected: dict[datetime, list[float]] = {}  # MP-HOT's SOC readings by minute
    for second in range(90, -1, -1):
        at = now - timedelta(seconds=second)
        expected.setdefault(at.replace(second=0), []).append(60 - second / 10)
    answer = await ops.get("/v1/sites/SITE-A/telemetry")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert (start.second, end.second) == (0, 0)
    assert timedelta(hours=6) <= end - start <= timedelta(hours=6, minutes=1)  # the default
    items = body["items"]
    assert [datetime.fromisoformat(item["bucket"]) for item in items] == sorted(expected)
    for item in items:
        socs = expected[datetime.fromisoformat(item["bucket"])]
        assert (item["units"], item["temperature_max_c"]) == (1, 56)
        assert (item["net_power_mw"], item["discharging_mw"], item["charging_mw"]) == (
            pytest.approx(0.1), pytest.approx(0.1), 0,
        )  # fmt: skip
        assert item["soc_mean_percent"] == pytest.approx(_mean(socs))
        assert (item["soc_min_percent"], item["soc_max_percent"]) == (min(socs), max(socs))
        assert item["energy_stored_mwh"] == pytest.approx(_mean(socs) / 100 * 3.854)
    last = {"from": (now - timedelta(seconds=1)).isoformat(), "to": now.isoformat()}
    narrow = (await ops.get("/v1/sites/SITE-A/telemetry", params=last)).json()
    assert [item["bucket"] for item in narrow["items"]] == [items[-1]["bucket"]]  # whole minutes
    capped = (await ops.get("/v1/sites/SITE-A/telemetry", params={"limit": 1})).json()
    assert (len(capped["items"]), capped["truncated"]) == (1, True)
    assert (await ops.get("/v1/sites/SITE-NONE/telemetry")).status_code == 404
    for params in (
        {"from": now.isoformat(), "to": (now - timedelta(minutes=2)).isoformat()},
        {"from": (now - timedelta(days=32)).isoformat()},
        {"limit": "0"},
        {"bucket": "1m"},  # no such parameter: refused, not ignored
    ):
        refused = await ops.get("/v1/sites/SITE-A/telemetry", params=params)
        assert refused.status_code == 422, params
    async with httpx.AsyncClient(base_url=str(ops.base_url), timeout=10) as anonymous:
        assert (await anonymous.get("/v1/sites/SITE-A/telemetry")).status_code == 401
