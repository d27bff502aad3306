"""Crafted Megapack telemetry whose KPIs are worked out by hand in tests/integration/test_kpis.py.

Site SITE-K on DAY, a reading every 10 s, STALE_AFTER_S = 30:
- KPI-K1 (capacity 1000 kWh), its SOC falls/rises linearly inside each hour:
  00:00-01:00 CHARGING at -500 kW, SOC 40 -> 86 (the 01:00:00 reading: 86)
  01:00-02:00 DISCHARGING at +400 kW, SOC 86 -> 44; SOH 99.5 before 01:30, 99.4 after
  02:00-03:00 FAULT at 0 kW, SOC 44
  03:00-04:00 MAINTENANCE at 0 kW, SOC 44
  04:00-05:00 IDLE at 0 kW, SOC 44, silent from the 04:19:50 reading to the 04:40:00 one
  05:00:00 one IDLE reading, then nothing for the rest of the day
- KPI-K2 (no capacity known: the default, 3854 kWh): STANDBY at -6 kW (auxiliary load),
  SOC 50, 00:00:00 to 05:00:00 inclusive, then nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from db.migrate import migrate

DAY = datetime(2026, 11, 2, tzinfo=UTC)
SITE = "SITE-K"
STEP = timedelta(seconds=10)
PER_HOUR = 360
COLUMNS = (
    "unit_id", "time", "site_id", "soc_percent", "soh_percent", "power_kw", "voltage_v",
    "current_a", "temperature_c", "state", "fault_codes", "received_at",
)  # fmt: skip

Row = tuple[object, ...]


def _row(unit_id: str, at: datetime, soc: float, soh: float, power_kw: float, state: str) -> Row:
    return (unit_id, at, SITE, soc, soh, power_kw, 480.0, 0.0, 25.0, state, [], at)


def k1_rows() -> list[Row]:
    """KPI-K1's readings."""
    rows: list[Row] = []
    for k in range(PER_HOUR):  # hour 0: charging
        at = DAY + k * STEP
        rows.append(_row("KPI-K1", at, 40 + 46 * k / PER_HOUR, 99.5, -500.0, "CHARGING"))
    for k in range(PER_HOUR):  # hour 1: discharging
        at = DAY + timedelta(hours=1) + k * STEP
        soh = 99.5 if k < PER_HOUR // 2 else 99.4
        rows.append(_row("KPI-K1", at, 86 - 42 * k / PER_HOUR, soh, 400.0, "DISCHARGING"))
    for hour, state in ((2, "FAULT"), (3, "MAINTENANCE")):
        for k in range(PER_HOUR):
            rows.append(_row("KPI-K1", DAY + timedelta(hours=hour) + k * STEP, 44, 99.4, 0, state))
    hour4 = DAY + timedelta(hours=4)
    for k in [*range(120), *range(240, 360)]:  # 04:00:00-04:19:50, 04:40:00-04:59:50
        rows.append(_row("KPI-K1", hour4 + k * STEP, 44, 99.4, 0.0, "IDLE"))
    rows.append(_row("KPI-K1", DAY + timedelta(hours=5), 44, 99.4, 0.0, "IDLE"))
    return rows


def k2_rows() -> list[Row]:
    """KPI-K2's readings: 00:00:00 to 05:00:00 inclusive, 1801 of them."""
    return [
        _row("KPI-K2", DAY + k * STEP, 50.0, 97.0, -6.0, "STANDBY") for k in range(5 * PER_HOUR + 1)
    ]


async def store_profile(conn: asyncpg.Connection) -> None:
    """Write both units' readings and their `units` rows."""
    await conn.copy_records_to_table(
        "megapack_telemetry", records=[*k1_rows(), *k2_rows()], columns=COLUMNS
    )
    await conn.executemany(
        """INSERT INTO units (unit_id, kind, site_id, last_seen, last_state, last_soc_percent,
               capacity_kwh)
           VALUES ($1, 'megapack', $2, $3, 'IDLE', $4, $5)""",
        [
            ("KPI-K1", SITE, DAY + timedelta(hours=5), 44.0, 1000.0),
            ("KPI-K2", SITE, DAY + timedelta(hours=5), 50.0, None),
        ],
    )


async def profile_database(base_url: str, *, timescale: bool) -> str:
    """A migrated database on the server of `base_url` holding the profile (on TimescaleDB
    with its KPI aggregate refreshed); its URL."""
    url = f"{base_url}/kpi_{uuid.uuid4().hex[:12]}"
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        await store_profile(conn)
        if timescale:
            await conn.execute("CALL refresh_continuous_aggregate('megapack_kpi_1h', NULL, NULL)")
    finally:
        await conn.close()
    return url
