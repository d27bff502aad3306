"""SQL of the ingestion path: COPY rows in, insert each reading once, keep `units` current.

The common case, rows never seen before, is a plain COPY into the telemetry table (inside a
savepoint). A redelivered message makes that COPY fail on the primary key; then the rows go
through a staging table and `INSERT ... ON CONFLICT DO NOTHING`, which skips the ones stored.
"""

from __future__ import annotations

import struct
from typing import Any

import asyncpg

from common.codec import (
    EV_COLUMNS,
    MEGAPACK_COLUMNS,
    RATING_COLUMNS,
    EvRow,
    MegapackRow,
    Rating,
    Ratings,
)

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_megapack (
    unit_id text, time timestamptz, site_id text, soc_percent float8, soh_percent float8,
    power_kw float8, voltage_v float8, current_a float8, temperature_c float8, state text,
    fault_codes text[], received_at timestamptz, rated_power_kw float8, capacity_kwh float8
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_ev (
    vehicle_id text, time timestamptz, fleet_id text, battery_soc_percent float8,
    battery_temp_c float8, latitude float8, longitude float8, speed_kmh float8,
    charging_state text, charge_power_kw float8, tire_pressure_psi float8, odometer_km float8,
    received_at timestamptz
) ON COMMIT DELETE ROWS;
"""

# Sorted inserts keep lock order stable when two consumers store the same redelivered rows.
INSERT_MEGAPACK = """
INSERT INTO megapack_telemetry (unit_id, time, site_id, soc_percent, soh_percent, power_kw,
    voltage_v, current_a, temperature_c, state, fault_codes, received_at)
SELECT unit_id, time, site_id, soc_percent, soh_percent, power_kw, voltage_v, current_a,
    temperature_c, state, fault_codes, received_at
FROM stage_megapack ORDER BY unit_id, time
ON CONFLICT (unit_id, time) DO NOTHING
"""

INSERT_EV = """
INSERT INTO ev_telemetry (vehicle_id, time, fleet_id, battery_soc_percent, battery_temp_c,
    latitude, longitude, speed_kmh, charging_state, charge_power_kw, tire_pressure_psi,
    odometer_km, received_at)
SELECT vehicle_id, time, fleet_id, battery_soc_percent, battery_temp_c, latitude, longitude,
    speed_kmh, charging_state, charge_power_kw, tire_pressure_psi, odometer_km, received_at
FROM stage_ev ORDER BY vehicle_id, time
ON CONFLICT (vehicle_id, time) DO NOTHING
"""

_UNITS_INSERT = """
INSERT INTO units (unit_id, kind, site_id, fleet_id, last_seen, last_state, last_soc_percent,
    last_power_kw, last_temperature_c, last_fault_codes, rated_power_kw, capacity_kwh)
"""

# Only a newer reading of the same kind moves a unit's latest state.
_UNITS_CONFLICT = """
ON CONFLICT (unit_id) DO UPDATE SET
    site_id = excluded.site_id, fleet_id = excluded.fleet_id, last_seen = excluded.last_seen,
    last_state = excluded.last_state, last_soc_percent = excluded.last_soc_percent,
    last_power_kw = excluded.last_power_kw, last_temperature_c = excluded.last_temperature_c,
    last_fault_codes = excluded.last_fault_codes,
    rated_power_kw = coalesce(excluded.rated_power_kw, units.rated_power_kw),
    capacity_kwh = coalesce(excluded.capacity_kwh, units.capacity_kwh), updated_at = now()
WHERE units.kind = excluded.kind AND units.last_seen <= excluded.last_seen
"""

UPSERT_MEGAPACK_UNITS = (
    _UNITS_INSERT
    + """
SELECT DISTINCT ON (unit_id) unit_id, 'megapack', site_id, NULL, time, state, soc_percent,
    power_kw, temperature_c, fault_codes, rated_power_kw, capacity_kwh
FROM stage_megapack ORDER BY unit_id, time DESC
"""
    + _UNITS_CONFLICT
)

UPSERT_EV_UNITS = (
    _UNITS_INSERT
    + """
SELECT DISTINCT ON (vehicle_id) vehicle_id, 'ev', NULL, fleet_id, time, charging_state,
    battery_soc_percent, charge_power_kw, battery_temp_c, '{}'::text[], NULL, NULL
FROM stage_ev ORDER BY vehicle_id, time DESC
"""
    + _UNITS_CONFLICT
)


_INT64 = struct.Struct("!q")


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def prepare_staging(conn: asyncpg.Connection) -> None:
    """Ready a connection for store_rows: staging tables, timestamptz as integers.

    Rows carry instants as microseconds since 2000-01-01 UTC, PostgreSQL's binary timestamptz:
    encoding a datetime costs more than the rest of a row, so this connection skips it.
    """
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=_INT64.pack, decoder=_decode_int64,
        format="binary",
    )  # fmt: skip
    await conn.execute(STAGING_DDL)


def _decode_int64(data: bytes) -> int:
    value: int = _INT64.unpack(data)[0]
    return value


async def store_rows(
    *,
    conn: asyncpg.Connection,
    megapack: list[MegapackRow],
    ev: list[EvRow],
    ratings: Ratings | None = None,
) -> tuple[int, int]:
    """Store rows in one transaction; returns (new Megapack rows, new EV rows).

    `ratings` (unit id -> rated kW, capacity kWh) go to `units` with the unit's latest row:
    a value not reported keeps the one stored.
    """
    stored_megapack = stored_ev = 0
    async with conn.transaction():
        if megapack:
            stored_megapack = await _store(
                conn, megapack, table="megapack_telemetry", stage="stage_megapack",
                columns=MEGAPACK_COLUMNS, insert=INSERT_MEGAPACK,
                upsert_units=UPSERT_MEGAPACK_UNITS, ratings=ratings or {},
            )  # fmt: skip
        if ev:
            stored_ev = await _store(
                conn, ev, table="ev_telemetry", stage="stage_ev",
                columns=EV_COLUMNS, insert=INSERT_EV, upsert_units=UPSERT_EV_UNITS,
            )  # fmt: skip
    return stored_megapack, stored_ev


_NO_RATING: Rating = (None, None)


async def _store(
    conn: asyncpg.Connection,
    rows: list[tuple[Any, ...]],
    *,
    table: str,
    stage: str,
    columns: tuple[str, ...],
    insert: str,
    upsert_units: str,
    ratings: Ratings | None = None,
) -> int:
    try:
        async with conn.transaction():  # a savepoint: a failed COPY undoes only itself
            await conn.copy_records_to_table(table, records=rows, columns=columns)
        stored, staged = len(rows), latest_per_unit(rows)
    except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
        stored, staged = -1, rows  # some were stored before: insert what is new
    if ratings is not None:  # Megapacks: the staging table has the ratings after the row
        staged = [(*row, *ratings.get(row[0], _NO_RATING)) for row in staged]
        columns = (*columns, *RATING_COLUMNS)
    await conn.copy_records_to_table(stage, records=staged, columns=columns)
    if stored < 0:
        stored = _count(await conn.execute(insert))
    await conn.execute(upsert_units)
    return stored


def latest_per_unit(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The newest row of each unit (rows start with unit id, time): all `units` needs."""
    latest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        seen = latest.get(row[0])
        if seen is None or row[1] >= seen[1]:
            latest[row[0]] = row
    return list(latest.values())
