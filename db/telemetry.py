"""SQL of the ingestion path: stage rows with COPY, insert once, keep `units` current."""

from __future__ import annotations

import asyncpg

from common.codec import EV_COLUMNS, MEGAPACK_COLUMNS, EvRow, MegapackRow

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_megapack (
    unit_id text, time_ms bigint, site_id text, soc_percent float8, soh_percent float8,
    power_kw float8, voltage_v float8, current_a float8, temperature_c float8, state text,
    fault_codes text[], received_at_us bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_ev (
    vehicle_id text, time_ms bigint, fleet_id text, battery_soc_percent float8,
    battery_temp_c float8, latitude float8, longitude float8, speed_kmh float8,
    charging_state text, charge_power_kw float8, tire_pressure_psi float8, odometer_km float8,
    received_at_us bigint
) ON COMMIT DELETE ROWS;
"""

# Sorted inserts keep lock order stable when two consumers store the same redelivered rows.
INSERT_MEGAPACK = """
INSERT INTO megapack_telemetry (unit_id, time, site_id, soc_percent, soh_percent, power_kw,
    voltage_v, current_a, temperature_c, state, fault_codes, received_at)
SELECT unit_id, TIMESTAMPTZ 'epoch' + time_ms * INTERVAL '1 millisecond', site_id,
    soc_percent, soh_percent, power_kw, voltage_v, current_a, temperature_c, state, fault_codes,
    TIMESTAMPTZ 'epoch' + received_at_us * INTERVAL '1 microsecond'
FROM stage_megapack ORDER BY unit_id, time_ms
ON CONFLICT (unit_id, time) DO NOTHING
"""

INSERT_EV = """
INSERT INTO ev_telemetry (vehicle_id, time, fleet_id, battery_soc_percent, battery_temp_c,
    latitude, longitude, speed_kmh, charging_state, charge_power_kw, tire_pressure_psi,
    odometer_km, received_at)
SELECT vehicle_id, TIMESTAMPTZ 'epoch' + time_ms * INTERVAL '1 millisecond', fleet_id,
    battery_soc_percent, battery_temp_c, latitude, longitude, speed_kmh, charging_state,
    charge_power_kw, tire_pressure_psi, odometer_km,
    TIMESTAMPTZ 'epoch' + received_at_us * INTERVAL '1 microsecond'
FROM stage_ev ORDER BY vehicle_id, time_ms
ON CONFLICT (vehicle_id, time) DO NOTHING
"""

_UNITS_INSERT = """
INSERT INTO units (unit_id, kind, site_id, fleet_id, last_seen, last_state, last_soc_percent,
    last_power_kw, last_temperature_c, last_fault_codes)
"""

# Only a newer reading of the same kind moves a unit's latest state.
_UNITS_CONFLICT = """
ON CONFLICT (unit_id) DO UPDATE SET
    site_id = excluded.site_id, fleet_id = excluded.fleet_id, last_seen = excluded.last_seen,
    last_state = excluded.last_state, last_soc_percent = excluded.last_soc_percent,
    last_power_kw = excluded.last_power_kw, last_temperature_c = excluded.last_temperature_c,
    last_fault_codes = excluded.last_fault_codes, updated_at = now()
WHERE units.kind = excluded.kind AND units.last_seen <= excluded.last_seen
"""

UPSERT_MEGAPACK_UNITS = (
    _UNITS_INSERT
    + """
SELECT DISTINCT ON (unit_id) unit_id, 'megapack', site_id, NULL,
    TIMESTAMPTZ 'epoch' + time_ms * INTERVAL '1 millisecond', state, soc_percent, power_kw,
    temperature_c, fault_codes
FROM stage_megapack ORDER BY unit_id, time_ms DESC
"""
    + _UNITS_CONFLICT
)

UPSERT_EV_UNITS = (
    _UNITS_INSERT
    + """
SELECT DISTINCT ON (vehicle_id) vehicle_id, 'ev', NULL, fleet_id,
    TIMESTAMPTZ 'epoch' + time_ms * INTERVAL '1 millisecond', charging_state,
    battery_soc_percent, charge_power_kw, battery_temp_c, '{}'::text[]
FROM stage_ev ORDER BY vehicle_id, time_ms DESC
"""
    + _UNITS_CONFLICT
)


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def prepare_staging(conn: asyncpg.Connection) -> None:
    """Create this connection's staging tables (emptied at every commit)."""
    await conn.execute(STAGING_DDL)


async def store_rows(
    *, conn: asyncpg.Connection, megapack: list[MegapackRow], ev: list[EvRow]
) -> tuple[int, int]:
    """Store rows in one transaction; returns (new Megapack rows, new EV rows)."""
    stored_megapack = stored_ev = 0
    async with conn.transaction():
        if megapack:
            await conn.copy_records_to_table(
                "stage_megapack", records=megapack, columns=MEGAPACK_COLUMNS
            )
            stored_megapack = _count(await conn.execute(INSERT_MEGAPACK))
            await conn.execute(UPSERT_MEGAPACK_UNITS)
        if ev:
            await conn.copy_records_to_table("stage_ev", records=ev, columns=EV_COLUMNS)
            stored_ev = _count(await conn.execute(INSERT_EV))
            await conn.execute(UPSERT_EV_UNITS)
    return stored_megapack, stored_ev
