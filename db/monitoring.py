"""SQL of the monitoring report: window figures from telemetry, current state from `units`.

The report covers the whole fleet of the database.
"Reporting" means the unit's latest reading is at most `stale_after_s` older than the end of
the window.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # A plain connection or one borrowed from a pool: every function here takes either.
    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]

# Readings stored in the window are found through the BRIN index on stored_at; the bound on
# their own timestamp lets TimescaleDB skip old (compressed) chunks. A reading stored more
# than this long after it was taken (a replayed backlog) is not counted.
WINDOW_LOOKBACK_S = 3600.0

INGEST = """
WITH stored AS (
    SELECT 'megapack' AS kind, stored_at - received_at AS lag FROM megapack_telemetry
    WHERE time >= $1::timestamptz - make_interval(secs => $3::float8)
      AND stored_at >= $1::timestamptz AND stored_at < $2::timestamptz
    UNION ALL
    SELECT 'ev', stored_at - received_at FROM ev_telemetry
    WHERE time >= $1::timestamptz - make_interval(secs => $3::float8)
      AND stored_at >= $1::timestamptz AND stored_at < $2::timestamptz
)
SELECT count(*) FILTER (WHERE kind = 'megapack') AS megapack_readings,
       count(*) FILTER (WHERE kind = 'ev') AS ev_readings,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM lag)) * 1000 AS lag_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM lag)) * 1000 AS lag_p95_ms
FROM stored
"""

NEW_FAULTS = """
SELECT count(*) FROM megapack_telemetry t
WHERE t.time >= $1::timestamptz - make_interval(secs => $3::float8)
  AND t.stored_at >= $1::timestamptz AND t.stored_at < $2::timestamptz
  AND t.state = 'FAULT'
  AND coalesce((SELECT p.state FROM megapack_telemetry p
                WHERE p.unit_id = t.unit_id AND p.time < t.time
                ORDER BY p.time DESC LIMIT 1), '') <> 'FAULT'
"""

MEGAPACKS = """
SELECT count(*) AS units,
       avg(last_soc_percent) AS soc_mean, min(last_soc_percent) AS soc_min,
       max(last_soc_percent) AS soc_max,
       count(*) FILTER (WHERE last_soc_percent < $1) AS low_soc,
       count(*) FILTER (WHERE last_state = 'FAULT') AS in_fault
FROM units WHERE kind = 'megapack'
"""

SITES = """
SELECT site_id, count(*) AS units,
       count(*) FILTER (WHERE reporting) AS reporting,
       sum(last_soc_percent / 100 * coalesce(capacity_kwh, $3)) / 1000 AS energy_stored_mwh,
       coalesce(sum(last_power_kw) FILTER (WHERE reporting), 0) / 1000 AS net_power_mw,
       coalesce(sum(-last_power_kw) FILTER (WHERE reporting AND last_power_kw < 0), 0) / 1000
           AS charging_mw,
       coalesce(sum(last_power_kw) FILTER (WHERE reporting AND last_power_kw > 0), 0) / 1000
           AS discharging_mw
FROM (SELECT *, last_seen >= $1::timestamptz - make_interval(secs => $2::float8) AS reporting
      FROM units
      WHERE kind = 'megapack') mp
GROUP BY site_id ORDER BY site_id
"""

UNITS = """
SELECT kind, count(*) AS total,
       count(*) FILTER (
           WHERE last_seen >= $1::timestamptz - make_interval(secs => $2::float8)
       ) AS reporting
FROM units GROUP BY kind
"""

EVS = """
SELECT count(*) AS total,
       count(*) FILTER (WHERE reporting AND latest.speed_kmh > 0) AS driving,
       count(*) FILTER (WHERE reporting AND u.last_state = 'CHARGING') AS charging,
       count(*) FILTER (WHERE u.last_soc_percent < $3) AS low_battery,
       count(*) FILTER (WHERE u.last_soc_percent < $4) AS critical_battery
FROM (SELECT *, last_seen >= $1::timestamptz - make_interval(secs => $2::float8) AS reporting
      FROM units
      WHERE kind = 'ev') u
LEFT JOIN LATERAL (
    SELECT e.speed_kmh FROM ev_telemetry e
    WHERE e.vehicle_id = u.unit_id ORDER BY e.time DESC LIMIT 1
) latest ON TRUE
"""

FAULT_CODES = """
SELECT code, count(*) AS units
FROM units, unnest(last_fault_codes) AS code
WHERE kind = 'megapack' AND last_state = 'FAULT'
GROUP BY code ORDER BY count(*) DESC, code
"""

# Worst first: in FAULT, then silent, then the emptiest.
WORST_UNITS = """
SELECT unit_id, kind, coalesce(site_id, fleet_id) AS group_id, last_state, last_soc_percent,
       last_temperature_c, last_power_kw, last_fault_codes,
       greatest(extract(epoch FROM $1::timestamptz - last_seen), 0)::float8 AS silent_s,
       last_seen < $1::timestamptz - make_interval(secs => $2::float8) AS stale
FROM units
ORDER BY (last_state = 'FAULT') DESC,
         (last_seen < $1::timestamptz - make_interval(secs => $2::float8)) DESC,
         last_soc_percent ASC, unit_id
LIMIT $3
"""


async def ingest_figures(conn: Conn, *, start: datetime, end: datetime) -> asyncpg.Record:
    """Readings stored in [start, end) per kind and the ingest lag percentiles (ms)."""
    row = await conn.fetchrow(INGEST, start, end, WINDOW_LOOKBACK_S)
    assert row is not None
    return row  # type: ignore[no-any-return]


async def new_faults(conn: Conn, *, start: datetime, end: datetime) -> int:
    """Megapack readings stored in the window that enter FAULT (the previous one was not)."""
    return int(await conn.fetchval(NEW_FAULTS, start, end, WINDOW_LOOKBACK_S))


async def megapack_figures(conn: Conn, *, low_soc_percent: float) -> asyncpg.Record:
    """Fleet SOC mean/min/max, units under the low threshold and units in FAULT."""
    row = await conn.fetchrow(MEGAPACKS, low_soc_percent)
    assert row is not None
    return row  # type: ignore[no-any-return]


async def site_figures(
    conn: Conn,
    *,
    end: datetime,
    stale_after_s: float,
    capacity_kwh: float,
) -> list[asyncpg.Record]:
    """Per site: units, energy stored (MWh) and power of the reporting units (MW)."""
    return await conn.fetch(SITES, end, stale_after_s, capacity_kwh)


async def unit_counts(conn: Conn, *, end: datetime, stale_after_s: float) -> list[asyncpg.Record]:
    """(kind, total, reporting) per kind."""
    return await conn.fetch(UNITS, end, stale_after_s)


async def ev_figures(
    conn: Conn,
    *,
    end: datetime,
    stale_after_s: float,
    low_percent: float,
    critical_percent: float,
) -> asyncpg.Record:
    """EVs: total, driving and charging (reporting ones), low and critical battery."""
    row = await conn.fetchrow(EVS, end, stale_after_s, low_percent, critical_percent)
    assert row is not None
    return row  # type: ignore[no-any-return]


async def fault_code_counts(conn: Conn) -> list[asyncpg.Record]:
    """(code, units) over the Megapacks in FAULT now."""
    return await conn.fetch(FAULT_CODES)


async def worst_units(
    conn: Conn, *, end: datetime, stale_after_s: float, limit: int
) -> list[asyncpg.Record]:
    """The units an operator should look at first."""
    return await conn.fetch(WORST_UNITS, end, stale_after_s, limit)


async def report_slot_taken(conn: Conn, *, slot_start: datetime) -> bool:
    """Whether the report of this interval is already stored."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM monitoring_reports WHERE slot_start = $1)", slot_start
        )
    )


async def store_report(
    conn: Conn,
    *,
    slot_start: datetime,
    window_start: datetime,
    window_end: datetime,
    instance: str,
    report_json: str,
) -> bool:
    """Store the report of an interval; false when that interval already has one."""
    report_id = await conn.fetchval(
        """INSERT INTO monitoring_reports (slot_start, window_start, window_end, instance, report)
           VALUES ($1, $2, $3, $4, $5::jsonb)
           ON CONFLICT (slot_start) DO NOTHING RETURNING report_id""",
        slot_start,
        window_start,
        window_end,
        instance,
        report_json,
    )
    return report_id is not None


async def latest_report(conn: Conn) -> str | None:
    """The newest stored report as JSON text."""
    text: str | None = await conn.fetchval(
        "SELECT report::text FROM monitoring_reports ORDER BY slot_start DESC LIMIT 1"
    )
    return text
