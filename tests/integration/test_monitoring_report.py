"""Every figure of the report equals the value computed by hand from known telemetry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from monitoring_service.alerting import evaluate_alerts
from monitoring_service.job import thresholds_from
from monitoring_service.report import compute_report
from monitoring_service.settings import ReportSettings
from tests.integration.test_broker_permissions import BrokerUsers, users  # noqa: F401

CAPACITY_KWH = 3854.0


@pytest.fixture(name="db")
async def own_database_connection(fresh_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a database of this test's own: a report covers every unit in it."""
    conn = await asyncpg.connect(fresh_database)
    yield conn
    await conn.close()


def report_settings(**overrides: object) -> ReportSettings:
    """Settings of these tests, independent of the environment."""
    values: dict[str, object] = {
        "monitor_interval_s": 10.0,
        "stale_after_s": 30.0,
        "low_soc_percent": 15.0,
        "megapack_capacity_kwh": CAPACITY_KWH,
        "gateway_url": "http://127.0.0.1:1",
        **overrides,
    }
    return ReportSettings(**values)  # type: ignore[arg-type]


async def add_megapack(
    db: asyncpg.Connection,
    *,
    unit_id: str,
    site_id: str,
    at: datetime,
    soc: float,
    power_kw: float = 0.0,
    temperature_c: float = 25.0,
    state: str = "IDLE",
    codes: Sequence[str] = (),
    lag_ms: float = 100.0,
    capacity_kwh: float | None = None,
) -> None:
    """One stored Megapack reading (stored `lag_ms` after receipt) and the unit's latest state."""
    await db.execute(
        """INSERT INTO megapack_telemetry (unit_id, time, site_id, soc_percent, power_kw,
               voltage_v, current_a, temperature_c, state, fault_codes, received_at, stored_at)
           VALUES ($1, $2, $3, $4, $5, 480, 0, $6, $7, $8, $2, $9)""",
        unit_id,
        at,
        site_id,
        soc,
        power_kw,
        temperature_c,
        state,
        list(codes),
        at + timedelta(milliseconds=lag_ms),
    )
    await db.execute(
        """INSERT INTO units (unit_id, kind, site_id, last_seen, last_state, last_soc_percent,
               last_power_kw, last_temperature_c, last_fault_codes, capacity_kwh)
           VALUES ($1, 'megapack', $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (unit_id) DO UPDATE SET last_seen = excluded.last_seen,
               last_state = excluded.last_state, last_soc_percent = excluded.last_soc_percent,
               last_power_kw = excluded.last_power_kw,
               last_temperature_c = excluded.last_temperature_c,
               last_fault_codes = excluded.last_fault_codes
           WHERE units.last_seen <= excluded.last_seen""",
        unit_id,
        site_id,
        at,
        state,
        soc,
        power_kw,
        temperature_c,
        list(codes),
        capacity_kwh,
    )


async def add_ev(
    db: asyncpg.Connection,
    *,
    vehicle_id: str,
    fleet_id: str,
    at: datetime,
    soc: float,
    temperature_c: float = 30.0,
    speed_kmh: float = 0.0,
    charging_state: str = "NOT_CHARGING",
    tire_psi: float | None = 40.0,
    lag_ms: float = 100.0,
) -> None:
    """One stored EV reading and the vehicle's latest state."""
    await db.execute(
        """INSERT INTO ev_telemetry (vehicle_id, time, fleet_id, battery_soc_percent,
               battery_temp_c, latitude, longitude, speed_kmh, charging_state, charge_power_kw,
               tire_pressure_psi, received_at, stored_at)
           VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $7, 0, $8, $2, $9)""",
        vehicle_id,
        at,
        fleet_id,
        soc,
        temperature_c,
        speed_kmh,
        charging_state,
        tire_psi,
        at + timedelta(milliseconds=lag_ms),
    )
    await db.execute(
        """INSERT INTO units (unit_id, kind, fleet_id, last_seen, last_state, last_soc_percent,
               last_power_kw, last_temperature_c)
           VALUES ($1, 'ev', $2, $3, $4, $5, 0, $6)
           ON CONFLICT (unit_id) DO UPDATE SET last_seen = excluded.last_seen,
               last_state = excluded.last_state, last_soc_percent = excluded.last_soc_percent,
               last_temperature_c = excluded.last_temperature_c
           WHERE units.last_seen <= excluded.last_seen""",
        vehicle_id,
        fleet_id,
        at,
        charging_state,
        soc,
        temperature_c,
    )


async def add_known_fleet(db: asyncpg.Connection, prefix: str, now: datetime) -> None:
    """Five Megapacks on two sites and four EVs; the expected figures are in the tests."""

    def ago(seconds: float) -> datetime:
        return now - timedelta(seconds=seconds)

    s1, s2, fleet = f"{prefix}S1", f"{prefix}S2", f"{prefix}F"
    await add_megapack(db, unit_id=f"{prefix}MP1", site_id=s1, at=ago(20), soc=79, lag_ms=500)
    await add_megapack(
        db, unit_id=f"{prefix}MP1", site_id=s1, at=ago(5), soc=80, power_kw=-500,
        temperature_c=30, state="CHARGING", lag_ms=200,
    )  # fmt: skip
    await add_megapack(
        db, unit_id=f"{prefix}MP2", site_id=s1, at=ago(4), soc=10, power_kw=1000,
        temperature_c=50, state="DISCHARGING", lag_ms=400,
    )  # fmt: skip
    await add_megapack(db, unit_id=f"{prefix}MP3", site_id=s2, at=ago(30), soc=51)
    await add_megapack(
        db, unit_id=f"{prefix}MP3", site_id=s2, at=ago(3), soc=50, power_kw=5,
        temperature_c=60, state="FAULT", codes=["CELL_OVERTEMP", "BMS_COMM"], lag_ms=600,
    )  # fmt: skip
    await add_megapack(
        db, unit_id=f"{prefix}MP4", site_id=s2, at=ago(100), soc=40, power_kw=200,
        state="DISCHARGING", capacity_kwh=2000,
    )  # fmt: skip
    await add_megapack(
        db, unit_id=f"{prefix}MP5", site_id=s2, at=ago(40), soc=50, state="FAULT",
        codes=["CELL_OVERTEMP"],
    )  # fmt: skip
    await add_megapack(
        db, unit_id=f"{prefix}MP5", site_id=s2, at=ago(2), soc=50, temperature_c=40,
        state="FAULT", codes=["CELL_OVERTEMP"], lag_ms=800,
    )  # fmt: skip
    await add_ev(
        db, vehicle_id=f"{prefix}EV1", fleet_id=fleet, at=ago(6), soc=70, speed_kmh=50,
        lag_ms=1000,
    )  # fmt: skip
    await add_ev(
        db, vehicle_id=f"{prefix}EV2", fleet_id=fleet, at=ago(7), soc=15, temperature_c=59,
        charging_state="CHARGING", tire_psi=29, lag_ms=100,
    )  # fmt: skip
    await add_ev(db, vehicle_id=f"{prefix}EV3", fleet_id=fleet, at=ago(200), soc=5)
    await add_ev(db, vehicle_id=f"{prefix}EV4", fleet_id=fleet, at=ago(60), soc=60, speed_kmh=30)


def fresh_prefix() -> str:
    """Unit, site and fleet ids no other test uses."""
    return f"MON{uuid.uuid4().hex[:8]}-"


async def test_every_figure_equals_the_hand_computed_value(db: asyncpg.Connection) -> None:
    prefix, now = fresh_prefix(), datetime.now(UTC)
    await add_known_fleet(db, prefix, now)

    report = await compute_report(conn=db, settings=report_settings(), end=now)

    ingest = report.ingest
    # Stored in the last 10 s: MP1, MP2, MP3, MP5 and EV1, EV2 (lags 200/400/600/800, 1000/100).
    assert (ingest.megapack_readings, ingest.ev_readings) == (4, 2)
    assert ingest.megapack_readings_per_s == pytest.approx(0.4)
    assert ingest.ev_readings_per_s == pytest.approx(0.2)
    # Sorted lags 100 200 400 600 800 1000: p50 = (400 + 600) / 2, p95 at rank 4.75.
    assert ingest.lag_p50_ms == pytest.approx(500.0)
    assert ingest.lag_p95_ms == pytest.approx(800 + 0.75 * 200)
    assert ingest.gateway_requests_per_s is None
    assert ingest.queue_depth is None

    soc = report.soc
    assert soc.mean_percent == pytest.approx((80 + 10 + 50 + 40 + 50) / 5)
    assert (soc.min_percent, soc.max_percent, soc.units_low) == (10, 80, 1)
    site1, site2 = soc.sites
    assert (site1.site_id, site1.units, site1.reporting) == (f"{prefix}S1", 2, 2)
    assert site1.energy_stored_mwh == pytest.approx((0.80 + 0.10) * CAPACITY_KWH / 1000)
    assert site1.net_power_mw == pytest.approx((-500 + 1000) / 1000)
    assert (site1.charging_mw, site1.discharging_mw) == pytest.approx((0.5, 1.0))
    assert (site2.site_id, site2.units, site2.reporting) == (f"{prefix}S2", 3, 2)
    # MP4 has its own capacity (2000 kWh) and is stale: its 200 kW no longer counts.
    expected_mwh = (0.5 * CAPACITY_KWH + 0.4 * 2000 + 0.5 * CAPACITY_KWH) / 1000
    assert site2.energy_stored_mwh == pytest.approx(expected_mwh)
    assert (site2.net_power_mw, site2.charging_mw, site2.discharging_mw) == pytest.approx(
        (0.005, 0.0, 0.005)
    )

    faults = report.faults
    assert (faults.units_in_fault, faults.new_faults) == (2, 1)  # MP5 was already in FAULT
    assert faults.by_code == {"CELL_OVERTEMP": 2, "BMS_COMM": 1}
    assert faults.open_alerts == {"critical": 0, "warning": 0, "info": 0}

    units = report.units
    assert (units.total, units.reporting, units.stale) == (9, 6, 3)  # MP4, EV3, EV4 silent
    assert (units.megapacks, units.evs) == (5, 4)
    evs = report.evs
    assert (evs.total, evs.driving, evs.charging) == (4, 1, 1)  # EV4 drives but is stale
    assert (evs.low_battery, evs.critical_battery) == (2, 1)  # 15 % and 5 %; 5 % is critical

    order = [unit.unit_id.removeprefix(prefix) for unit in report.worst_units]
    assert order == ["MP3", "MP5", "EV3", "MP4", "EV4", "MP2", "EV2", "EV1", "MP1"]


async def test_open_alerts_by_severity_count_after_evaluation(db: asyncpg.Connection) -> None:
    prefix, now = fresh_prefix(), datetime.now(UTC)
    await add_known_fleet(db, prefix, now)
    settings = report_settings()
    async with db.transaction():
        changes = await evaluate_alerts(conn=db, thresholds=thresholds_from(settings), now=now)
    report = await compute_report(conn=db, settings=settings, end=now)
    # critical: MP3 temp 60 °C (one alert, not a warning beside it), MP3 and MP5 FAULT,
    # EV2 battery 59 °C, EV3 battery 5 % (< 10 %);
    # warning: MP2 SOC 10 %, MP2 temp 50 °C, MP4 EV3 EV4 stale, EV2 tires 29 psi.
    assert report.faults.open_alerts == {"critical": 5, "warning": 6, "info": 0}
    assert report.faults.unacknowledged_alerts == len(changes.raised) == 11


async def test_an_empty_database_is_a_report_of_zeros(db: asyncpg.Connection) -> None:
    report = await compute_report(conn=db, settings=report_settings(), end=datetime.now(UTC))
    assert (report.ingest.megapack_readings, report.ingest.ev_readings) == (0, 0)
    assert (report.units.total, report.evs.total, report.faults.units_in_fault) == (0, 0, 0)
    assert report.soc.sites == []
    assert report.soc.mean_percent is None
