"""SQL of the monitoring read API: units, their latest reading and their telemetry."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

if TYPE_CHECKING:
    from db.monitoring import Conn

Kind = Literal["megapack", "ev"]

_TABLES: dict[str, tuple[str, str, str]] = {
    # kind: (raw table, 1-minute aggregate, id column)
    "megapack": ("megapack_telemetry", "megapack_telemetry_1m", "unit_id"),
    "ev": ("ev_telemetry", "ev_telemetry_1m", "vehicle_id"),
}

_UNIT_COLUMNS = """unit_id, kind, site_id, fleet_id, first_seen, last_seen, last_state,
    last_soc_percent, last_power_kw, last_temperature_c, last_fault_codes, capacity_kwh,
    last_seen < now() - make_interval(secs => $1) AS stale"""


async def list_units(
    conn: Conn,
    *,
    stale_after_s: float,
    kind: str | None,
    site_id: str | None,
    fleet_id: str | None,
    state: str | None,
    after: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Units in id order after a cursor, optionally of one kind, site, fleet or state."""
    return await conn.fetch(
        f"""SELECT {_UNIT_COLUMNS} FROM units
            WHERE ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR site_id = $3)
              AND ($4::text IS NULL OR fleet_id = $4) AND ($5::text IS NULL OR last_state = $5)
              AND ($6::text IS NULL OR unit_id > $6)
            ORDER BY unit_id LIMIT $7""",  # noqa: S608 (fixed column list)
        stale_after_s,
        kind,
        site_id,
        fleet_id,
        state,
        after,
        limit,
    )


async def get_unit(conn: Conn, *, unit_id: str, stale_after_s: float) -> asyncpg.Record | None:
    """One unit's registry row."""
    return await conn.fetchrow(
        f"SELECT {_UNIT_COLUMNS} FROM units WHERE unit_id = $2",  # noqa: S608 (fixed columns)
        stale_after_s,
        unit_id,
    )


async def latest_reading(conn: Conn, *, kind: Kind, unit_id: str) -> dict[str, Any] | None:
    """The newest stored reading of a unit."""
    table, _, column = _TABLES[kind]
    row = await conn.fetchrow(
        f"SELECT * FROM {table} WHERE {column} = $1 ORDER BY time DESC LIMIT 1",  # noqa: S608
        unit_id,
    )
    return dict(row) if row is not None else None


async def telemetry(
    conn: Conn,
    *,
    kind: Kind,
    unit_id: str,
    start: datetime,
    end: datetime,
    bucketed: bool,
    limit: int,
) -> list[dict[str, Any]]:
    """Readings (or 1-minute buckets) of a unit in [start, end), oldest first."""
    raw, aggregate, column = _TABLES[kind]
    table, time_column = (aggregate, "bucket") if bucketed else (raw, "time")
    rows = await conn.fetch(
        f"""SELECT * FROM {table} WHERE {column} = $1 AND {time_column} >= $2
            AND {time_column} < $3 ORDER BY {time_column} LIMIT $4""",  # noqa: S608 (fixed names)
        unit_id,
        start,
        end,
        limit,
    )
    return [dict(row) for row in rows]
