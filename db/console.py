"""SQL of the web console's push channel: what changed since the previous look."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from db.monitoring import Conn

# The same fields as the monitoring API's UnitPublic (monitoring_service/schemas.py).
_UNIT_FIELDS = """unit_id, kind, site_id, fleet_id, last_seen, last_state AS state,
    last_soc_percent AS soc_percent, last_power_kw AS power_kw,
    last_temperature_c AS temperature_c, last_fault_codes AS fault_codes, updated_at"""


async def database_now(conn: Conn) -> datetime:
    """The database's clock (`updated_at` columns are stamped by it)."""
    value: datetime = await conn.fetchval("SELECT now()")
    return value


async def units_changed(
    conn: Conn, *, unit_ids: list[str], since: datetime | None
) -> list[asyncpg.Record]:
    """The named units whose row changed after `since` (all of them when None)."""
    return await conn.fetch(
        f"""SELECT {_UNIT_FIELDS} FROM units WHERE unit_id = ANY($1::text[])
            AND ($2::timestamptz IS NULL OR updated_at > $2)""",  # noqa: S608 (fixed columns)
        unit_ids,
        since,
    )


async def ev_positions(conn: Conn, *, since: datetime | None, limit: int) -> list[asyncpg.Record]:
    """Vehicles changed after `since` (all when None) with the position of their newest reading."""
    return await conn.fetch(
        """SELECT u.unit_id, u.fleet_id, u.last_seen, u.last_state AS charging_state,
                  u.last_soc_percent AS soc_percent, u.updated_at,
                  r.latitude, r.longitude, r.speed_kmh
           FROM units u CROSS JOIN LATERAL (
               SELECT latitude, longitude, speed_kmh FROM ev_telemetry e
               WHERE e.vehicle_id = u.unit_id ORDER BY time DESC LIMIT 1) r
           WHERE u.kind = 'ev' AND ($1::timestamptz IS NULL OR u.updated_at > $1)
           ORDER BY u.unit_id LIMIT $2""",
        since,
        limit,
    )


async def commands_changed(
    conn: Conn, *, unit_ids: list[str], since: datetime
) -> list[asyncpg.Record]:
    """Commands of the named units changed after `since`, as the control API names their fields
    (whatever columns the table has; bookkeeping of the delivery left out)."""
    return await conn.fetch(
        """SELECT c.command_id::text AS command_id, c.unit_id, c.updated_at,
                  (to_jsonb(c) - 'request_digest' - 'seq' - 'publish_attempts'
                   - 'last_publish_at')::text AS doc
           FROM commands c WHERE c.unit_id = ANY($1::text[]) AND c.updated_at > $2
           ORDER BY c.updated_at""",
        unit_ids,
        since,
    )


async def alerts_version(conn: Conn) -> int:
    """Grows with every alert event (raised, cleared, acknowledged, ...)."""
    value: int = await conn.fetchval("SELECT coalesce(max(event_id), 0) FROM alert_events")
    return value
