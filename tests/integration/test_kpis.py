"""KPIs of crafted telemetry (tests/support/kpi_profile.py) equal the figures worked out by hand.

They run on this run's PostgreSQL; with TEST_TIMESCALE_URL set (a TimescaleDB server, e.g.
`postgresql://postgres@127.0.0.1:5433`) every test runs on TimescaleDB as well, from the
continuous aggregate, and `test_flavours_agree` compares the two flavours figure by figure.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from monitoring_service.kpi_figures import KpiReport
from monitoring_service.kpi_handler import KpiQuery, KpiSettings, compute_kpis
from tests.support.databases import drop_database
from tests.support.energy import rte_percent_of
from tests.support.kpi_profile import DAY, SITE, profile_database

TIMESCALE_URL = os.environ.get("TEST_TIMESCALE_URL", "").rstrip("/")
FLAVOURS = ["postgres", *(["timescale"] if TIMESCALE_URL else [])]
SETTINGS = KpiSettings(stale_after_s=30.0, default_capacity_kwh=3854.0, expected_interval_s=10.0)
NOW = datetime(2026, 11, 20, tzinfo=UTC)  # long after DAY: no bucket is cut short by "now"
CAPACITY = 1000.0 + 3854.0  # KPI-K1 (its own) + KPI-K2 (the default)
H = timedelta(hours=1)
EXACT = 1e-9
WATERMARK = """SELECT _timescaledb_functions.to_timestamp(
    _timescaledb_functions.cagg_watermark(mat_hypertable_id))
FROM _timescaledb_catalog.continuous_agg WHERE user_view_name = 'megapack_kpi_1h'"""


def approx(value: float) -> object:
    return pytest.approx(value, abs=EXACT)


@pytest.fixture(scope="module")
def profile_urls(database_url: str) -> Iterator[dict[str, str]]:
    """A database holding the crafted telemetry, per flavour."""
    urls = {
        "postgres": asyncio.run(profile_database(database_url.rsplit("/", 1)[0], timescale=False))
    }
    if TIMESCALE_URL:
        urls["timescale"] = asyncio.run(profile_database(TIMESCALE_URL, timescale=True))
    yield urls
    for url in urls.values():
        asyncio.run(drop_database(url))


@pytest.fixture(params=FLAVOURS)
async def conn(
    request: pytest.FixtureRequest, profile_urls: dict[str, str]
) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(profile_urls[request.param])
    yield connection
    await connection.close()


async def kpis(
    conn: asyncpg.Connection, scope: str, scope_id: str | None, hours: int, bucket: str
) -> KpiReport:
    query = KpiQuery(scope=scope, scope_id=scope_id, start=DAY, end=DAY + hours * H, bucket=bucket)
    return await compute_kpis(conn=conn, query=query, settings=SETTINGS, now=NOW)


async def test_hourly_site_figures_by_hand(conn: asyncpg.Connection) -> None:
    report = await kpis(conn, "site", SITE, 5, "1h")
    assert report.units == 2
    assert report.capacity_kwh == CAPACITY
    h0, h1, h2, h3, h4 = report.items
    assert [item.bucket_start for item in report.items] == [DAY + k * H for k in range(5)]
    # Hour 0. K1: 360 intervals of 10 s at -500 kW (the last one closed by the 01:00:00
    # reading) = 360 * 10 * 500 / 3600 = 500 kWh; K2: 360 * 10 * 6 / 3600 = 6 kWh.
    assert h0.energy_charged_kwh == approx(506.0)
    assert h0.energy_discharged_kwh == approx(0.0)
    # K1's SOC 40 % at 00:00:00 -> 86 % at 01:00:00, of 1000 kWh × SOH 99.5 %: +457.7 kWh;
    # K2 stays at 50 %.
    assert h0.stored_energy_change_kwh == approx((86 - 40) * 99.5 / 10)  # SOC × cap × SOH
    # Nothing out: RTE 0; cycles = (506 + 0) / (2 * 4854).
    assert h0.rte_percent == approx(0.0)
    assert h0.equivalent_full_cycles == approx(506.0 / (2 * CAPACITY))
    assert h0.time_in_state_s["CHARGING"] == approx(3600.0)
    assert h0.time_in_state_s["STANDBY"] == approx(3600.0)
    assert h0.availability_percent == approx(100.0)
    assert h0.unplanned_outage_percent == approx(0.0)
    assert h0.peak_charge_kw == 500.0  # K2 draws, never gives
    assert h0.peak_discharge_kw == 0.0
    assert h0.soh_first == approx((99.5 + 97.0) / 2)
    assert h0.soh_last == approx((99.5 + 97.0) / 2)
    # 2 units * 3600 s / 10 s = 720 expected, 360 + 360 stored.
    assert (h0.readings_expected, h0.readings_received, h0.gap_count) == (720, 720, 0)
    # Hour 1: K1 gives 400 kWh (360 * 10 s * 400 kW), K2 draws 6 kWh; K1's SOC 86 -> 44 %
    # (the 02:00:00 reading; SOH 99.5 -> 99.4): -418.34 kWh. RTE = η², 6 η - 400 / η = ΔE.
    assert h1.energy_discharged_kwh == approx(400.0)
    assert h1.energy_charged_kwh == approx(6.0)
    assert h1.stored_energy_change_kwh == approx((44 * 99.4 - 86 * 99.5) / 10)
    assert h1.rte_percent == approx(rte_percent_of(6.0, 400.0, -418.34))
    assert h1.rte_percent == pytest.approx(89.00, abs=0.01)
    assert h1.equivalent_full_cycles == approx(406.0 / (2 * CAPACITY))
    assert h1.peak_charge_kw == 6.0
    assert h1.peak_discharge_kw == 400.0
    # K1's SOH is 99.4 from 01:30 on: last = (99.4 + 97) / 2.
    assert h1.soh_first == approx(98.25)
    assert h1.soh_last == approx(98.2)
    # Hour 2: K1 in FAULT 3600 s: unplanned; available = K2's 3600 s of 7200 = 50 %.
    assert h2.time_in_state_s["FAULT"] == approx(3600.0)
    assert h2.availability_percent == approx(50.0)
    assert h2.unplanned_outage_percent == approx(50.0)
    assert h2.planned_outage_percent == approx(0.0)
    assert h2.energy_charged_kwh == approx(6.0)
    assert h2.energy_discharged_kwh == approx(0.0)
    # Hour 3: K1 in MAINTENANCE: planned (3600 / 7200 = 50 %), not unplanned.
    assert h3.time_in_state_s["MAINTENANCE"] == approx(3600.0)
    assert h3.planned_outage_percent == approx(50.0)
    assert h3.unplanned_outage_percent == approx(0.0)
    assert h3.availability_percent == approx(100.0)
    # Hour 4: K1 IDLE 04:00:00-04:19:50 (119 intervals = 1190 s), silent to 04:40:00 (1210 s
    # > 30 s: a gap, nothing integrated), IDLE again 04:40:00-05:00:00 (120 intervals
    # = 1200 s): 2390 s. Available = (2390 + 3600) / 7200.
    assert h4.time_in_state_s["IDLE"] == approx(2390.0)
    assert h4.not_reporting_s == approx(1210.0)
    assert h4.availability_percent == approx((2390.0 + 3600.0) / 7200.0 * 100)
    assert h4.unplanned_outage_percent == approx(1210.0 / 7200.0 * 100)
    assert (h4.readings_expected, h4.readings_received) == (720, 240 + 360)
    assert [(g.unit_id, g.start, g.end, g.duration_s) for g in h4.gaps] == [
        (
            "KPI-K1",
            DAY + timedelta(hours=4, minutes=19, seconds=50),
            DAY + timedelta(hours=4, minutes=40),
            1210.0,
        )
    ]


async def test_daily_site_figures_by_hand(conn: asyncpg.Connection) -> None:
    (day,) = (await kpis(conn, "site", SITE, 24, "1d")).items
    # Charged: K1 500 + K2 6 kWh in each of hours 0-4 = 530; discharged: K1's 400.
    assert day.energy_charged_kwh == approx(530.0)
    assert day.energy_discharged_kwh == approx(400.0)
    # K1's SOC 40 % (00:00:00) -> 44 % (its last reading, 05:00:00) of 1000 kWh, SOH
    # 99.5 -> 99.4 %: +39.36 kWh.
    assert day.stored_energy_change_kwh == approx((44 * 99.4 - 40 * 99.5) / 10)
    assert day.rte_percent == approx(rte_percent_of(530.0, 400.0, 39.36))
    assert day.equivalent_full_cycles == approx((530.0 + 400.0) / (2 * CAPACITY))
    assert day.time_in_state_s == {
        "IDLE": approx(2390.0), "CHARGING": approx(3600.0), "DISCHARGING": approx(3600.0),
        "STANDBY": approx(18000.0), "FAULT": approx(3600.0), "MAINTENANCE": approx(3600.0),
        "OFFLINE": approx(0.0),
    }  # fmt: skip
    # The period is 2 units * 86400 s = 172800 s; in service (not FAULT/OFFLINE, reporting):
    # 3600 + 3600 + 3600 (maintenance) + 2390 + 18000 = 31190 s.
    assert day.availability_percent == approx(31190.0 / 172800.0 * 100)
    assert day.planned_outage_percent == approx(3600.0 / 172800.0 * 100)
    assert day.not_reporting_s == approx(172800.0 - 34790.0)
    # Expected 172800 / 10 = 17280; stored: K1 4 * 360 + 240 + 1, K2 1801.
    assert (day.readings_expected, day.readings_received) == (17280, 1681 + 1801)
    end = DAY + timedelta(days=1)
    assert [(g.unit_id, g.start, g.end) for g in day.gaps] == [
        (
            "KPI-K1",
            DAY + timedelta(hours=4, minutes=19, seconds=50),
            DAY + timedelta(hours=4, minutes=40),
        ),
        ("KPI-K1", DAY + 5 * H, end),
        ("KPI-K2", DAY + 5 * H, end),
    ]
    assert day.soh_first == approx(98.25)
    assert day.soh_last == approx(98.2)


async def test_unit_scope_and_rte_without_charge(conn: asyncpg.Connection) -> None:
    hourly = await kpis(conn, "unit", "KPI-K1", 5, "1h")
    assert hourly.capacity_kwh == 1000.0
    # Hour 0: 500 kWh in, none out: RTE 0; cycles 500 / 2000.
    assert hourly.items[0].rte_percent == approx(0.0)
    assert hourly.items[0].equivalent_full_cycles == approx(0.25)
    # Hour 2 (FAULT, 0 kW): nothing charged, so no RTE at all.
    assert hourly.items[2].energy_charged_kwh == 0.0
    assert hourly.items[2].rte_percent is None
    (day,) = (await kpis(conn, "unit", "KPI-K1", 24, "1d")).items
    # 500 η - 400 / η = 40: the 40 kWh still stored is not counted as lost.
    assert day.rte_percent == approx(rte_percent_of(500.0, 400.0, 39.36))
    assert day.equivalent_full_cycles == approx(900.0 / 2000.0)


async def test_fleet_is_every_megapack(conn: asyncpg.Connection) -> None:
    fleet = await kpis(conn, "fleet", None, 24, "1d")
    site = await kpis(conn, "site", SITE, 24, "1d")
    assert fleet.units == 2
    assert fleet.items == site.items


@pytest.mark.skipif(not TIMESCALE_URL, reason="needs TEST_TIMESCALE_URL (a TimescaleDB server)")
async def test_flavours_agree(profile_urls: dict[str, str]) -> None:
    """The continuous aggregate gives the figures the raw rows give, bucket by bucket."""
    reports: dict[str, list[KpiReport]] = {}
    for flavour, url in profile_urls.items():
        connection = await asyncpg.connect(url)
        try:
            if flavour == "timescale":  # the aggregate holds every reading
                watermark = await connection.fetchval(WATERMARK)
                assert watermark >= DAY + 6 * H  # the end of the hour of the last reading
            reports[flavour] = [
                await kpis(connection, scope, scope_id, hours, bucket)
                for scope, scope_id, hours, bucket in (
                    ("site", SITE, 24, "1h"),
                    ("site", SITE, 24, "1d"),
                    ("unit", "KPI-K1", 6, "1h"),
                )
            ]
        finally:
            await connection.close()
    assert [r.source for r in reports["timescale"]] == ["continuous_aggregate"] * 3
    assert [r.source for r in reports["postgres"]] == ["raw"] * 3
    for raw, aggregated in zip(reports["postgres"], reports["timescale"], strict=True):
        for mine, theirs in zip(raw.items, aggregated.items, strict=True):
            expected = mine.model_dump()
            got = theirs.model_dump()
            assert got.keys() == expected.keys()
            for name, value in expected.items():
                if isinstance(value, float):
                    assert got[name] == approx(value), name
                elif name == "time_in_state_s":
                    assert got[name] == {k: approx(v) for k, v in value.items()}
                else:
                    assert got[name] == value, name
