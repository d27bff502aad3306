"""SQL of alerts: current rule conditions, episodes, acknowledgement and the event outbox."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from db.monitoring import Conn

# Only one monitoring instance evaluates (and stores a report) at a time.
EVALUATION_LOCK_KEY = 0x4D4F4E49  # "MONI"

# Every rule condition that holds now, over the units' latest state. $1 unit id prefix,
# $2 now, $3 enabled rule names, then the thresholds.
CONDITIONS = """
WITH mp AS (
    SELECT unit_id, site_id, last_state, last_soc_percent, last_temperature_c,
           last_fault_codes, last_seen
    FROM units WHERE kind = 'megapack' AND unit_id LIKE $1 || '%'
), ev AS (
    SELECT u.unit_id, u.fleet_id, u.last_soc_percent, u.last_temperature_c, latest.tire_psi
    FROM units u
    LEFT JOIN LATERAL (
        SELECT e.tire_pressure_psi AS tire_psi FROM ev_telemetry e
        WHERE e.vehicle_id = u.unit_id ORDER BY e.time DESC LIMIT 1
    ) latest ON TRUE
    WHERE u.kind = 'ev' AND u.unit_id LIKE $1 || '%'
), found AS (
    SELECT 'megapack_low_soc' AS rule, unit_id, 'megapack' AS kind, site_id,
           NULL::text AS fleet_id, last_soc_percent AS value, $4::float8 AS threshold,
           '{}'::text[] AS fault_codes
    FROM mp WHERE last_soc_percent < $4
    UNION ALL
    SELECT 'megapack_temp_high', unit_id, 'megapack', site_id, NULL, last_temperature_c, $5,
           '{}' FROM mp WHERE last_temperature_c >= $5
    UNION ALL
    SELECT 'megapack_temp_critical', unit_id, 'megapack', site_id, NULL, last_temperature_c,
           $6, '{}' FROM mp WHERE last_temperature_c >= $6
    UNION ALL
    SELECT 'megapack_fault', unit_id, 'megapack', site_id, NULL, NULL, NULL, last_fault_codes
    FROM mp WHERE last_state = 'FAULT'
    UNION ALL
    SELECT 'megapack_offline', unit_id, 'megapack', site_id, NULL, NULL, NULL, '{}'
    FROM mp WHERE last_state = 'OFFLINE'
    UNION ALL
    SELECT 'unit_stale', unit_id, kind, site_id, fleet_id,
           extract(epoch FROM $2::timestamptz - last_seen)::float8, $7::float8, '{}'
    FROM units
    WHERE unit_id LIKE $1 || '%' AND last_seen < $2::timestamptz - make_interval(secs => $7::float8)
    UNION ALL
    SELECT 'ev_battery_over_temp', unit_id, 'ev', NULL, fleet_id, last_temperature_c, $8, '{}'
    FROM ev WHERE last_temperature_c >= $8
    UNION ALL
    SELECT 'ev_tire_pressure_low', unit_id, 'ev', NULL, fleet_id, tire_psi, $9, '{}'
    FROM ev WHERE tire_psi < $9
    UNION ALL
    SELECT 'ev_battery_low', unit_id, 'ev', NULL, fleet_id, last_soc_percent, $10, '{}'
    FROM ev WHERE last_soc_percent < $10
)
SELECT * FROM found WHERE rule = ANY($3::text[]) ORDER BY rule, unit_id
"""

_EVENT = """
INSERT INTO alert_events (alert_id, event, payload)
SELECT alert_id, $2, to_jsonb(a) || jsonb_build_object('event', $2::text)
FROM alerts a WHERE alert_id = $1
"""


async def try_evaluation_lock(conn: Conn) -> bool:
    """Take the evaluation lock for this transaction; false when another instance holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", EVALUATION_LOCK_KEY))


async def current_conditions(
    conn: Conn,
    *,
    unit_prefix: str,
    now: datetime,
    enabled: tuple[str, ...],
    thresholds: tuple[float, ...],
) -> list[asyncpg.Record]:
    """Rows (rule, unit_id, kind, site_id, fleet_id, value, threshold, fault_codes)."""
    return await conn.fetch(CONDITIONS, unit_prefix, now, list(enabled), *thresholds)


async def open_alerts(conn: Conn, *, unit_prefix: str) -> list[asyncpg.Record]:
    """Alerts not cleared yet, locked for this transaction."""
    return await conn.fetch(
        "SELECT alert_id, rule, unit_id, fault_codes FROM alerts WHERE state <> 'cleared' "
        "AND unit_id LIKE $1 || '%' ORDER BY alert_id FOR UPDATE",
        unit_prefix,
    )


async def raise_alert(
    conn: Conn,
    *,
    rule: str,
    unit_id: str,
    kind: str,
    site_id: str | None,
    fleet_id: str | None,
    severity: str,
    message: str,
    value: float | None,
    threshold: float | None,
    fault_codes: list[str],
) -> int | None:
    """Open an alert and queue its `raised` event; None when its episode is already open."""
    alert_id: int | None = await conn.fetchval(
        """INSERT INTO alerts (rule, unit_id, kind, site_id, fleet_id, severity, message, value,
               threshold, fault_codes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (rule, unit_id) WHERE state <> 'cleared' DO NOTHING
           RETURNING alert_id""",
        rule,
        unit_id,
        kind,
        site_id,
        fleet_id,
        severity,
        message,
        value,
        threshold,
        fault_codes,
    )
    if alert_id is not None:
        await conn.execute(_EVENT, alert_id, "raised")
    return alert_id


async def update_fault_codes(
    conn: Conn, *, alert_id: int, fault_codes: list[str], message: str
) -> None:
    """Keep an open FAULT alert's codes current (the episode goes on, no new event)."""
    await conn.execute(
        "UPDATE alerts SET fault_codes = $2, message = $3, updated_at = now() "
        "WHERE alert_id = $1 AND state <> 'cleared'",
        alert_id,
        fault_codes,
        message,
    )


async def clear_alert(conn: Conn, *, alert_id: int) -> bool:
    """Close an open alert and queue its `cleared` event."""
    status = await conn.execute(
        "UPDATE alerts SET state = 'cleared', cleared_at = now(), updated_at = now() "
        "WHERE alert_id = $1 AND state <> 'cleared'",
        alert_id,
    )
    if status.endswith(" 0"):
        return False
    await conn.execute(_EVENT, alert_id, "cleared")
    return True


async def acknowledge(conn: Conn, *, alert_id: int, by: str) -> str | None:
    """Acknowledge an active alert; returns the alert's state afterwards (None: no such alert)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), "
            "acknowledged_by = $2, updated_at = now() "
            "WHERE alert_id = $1 AND state = 'active' RETURNING state",
            alert_id,
            by,
        )
        if row is not None:
            await conn.execute(_EVENT, alert_id, "acknowledged")
            return str(row["state"])
        state: str | None = await conn.fetchval(
            "SELECT state FROM alerts WHERE alert_id = $1", alert_id
        )
        return state


async def get_alert(conn: Conn, *, alert_id: int) -> asyncpg.Record | None:
    """One alert by id."""
    return await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = $1", alert_id)


async def list_alerts(
    conn: Conn,
    *,
    state: str | None,
    unit_id: str | None,
    before_id: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Alerts newest first, optionally of one state or unit, below a cursor id."""
    return await conn.fetch(
        """SELECT * FROM alerts
           WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR unit_id = $2)
             AND ($3::bigint IS NULL OR alert_id < $3)
           ORDER BY alert_id DESC LIMIT $4""",
        state,
        unit_id,
        before_id,
        limit,
    )


async def open_alerts_by_severity(conn: Conn, *, unit_prefix: str) -> list[asyncpg.Record]:
    """(severity, open, unacknowledged) counts of alerts not cleared."""
    return await conn.fetch(
        """SELECT severity, count(*) AS open, count(*) FILTER (WHERE state = 'active') AS active
           FROM alerts WHERE state <> 'cleared' AND unit_id LIKE $1 || '%'
           GROUP BY severity""",
        unit_prefix,
    )


async def claim_unpublished_events(conn: Conn, *, limit: int) -> list[asyncpg.Record]:
    """Oldest unpublished events, locked (skipping those another instance is publishing)."""
    return await conn.fetch(
        """SELECT event_id, event, payload::text AS payload, payload->>'rule' AS rule
           FROM alert_events WHERE published_at IS NULL
           ORDER BY event_id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )


async def mark_published(conn: Conn, *, event_ids: list[int]) -> None:
    """Record that these events were confirmed by the broker."""
    await conn.execute(
        "UPDATE alert_events SET published_at = now() WHERE event_id = ANY($1::bigint[])",
        event_ids,
    )
