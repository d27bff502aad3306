"""SQL of alert evaluation: the rules' measurements, active episodes, timers and events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from db.monitoring import Conn

# Only one monitoring instance evaluates (and stores a report) at a time.
EVALUATION_LOCK_KEY = 0x4D4F4E49  # "MONI"
ACTIVE = "('active_unacknowledged', 'active_acknowledged')"
SEVERITY_RANK = "array_position(ARRAY['info', 'warning', 'critical'], {})"

# Each rule's measurement for every unit near its condition, over the units' latest state.
# $1 now, $2 enabled rule names, then each numeric rule's near bound
# (its mildest threshold, deadband included): the rules decide the severity in Python.
MEASUREMENTS = """
WITH mp AS (
    SELECT unit_id, site_id, last_state, last_soc_percent, last_temperature_c,
           last_fault_codes
    FROM units WHERE kind = 'megapack'
), ev AS (
    SELECT u.unit_id, u.fleet_id, u.last_soc_percent, u.last_temperature_c, latest.tire_psi
    FROM units u
    LEFT JOIN LATERAL (
        SELECT e.tire_pressure_psi AS tire_psi FROM ev_telemetry e
        WHERE e.vehicle_id = u.unit_id ORDER BY e.time DESC LIMIT 1
    ) latest ON TRUE
    WHERE u.kind = 'ev'
), found AS (
    SELECT 'megapack_temp' AS rule, unit_id, 'megapack' AS kind, site_id,
           NULL::text AS fleet_id, last_temperature_c AS value, '{}'::text[] AS fault_codes
    FROM mp WHERE last_temperature_c >= $3
    UNION ALL
    SELECT 'megapack_low_soc', unit_id, 'megapack', site_id, NULL, last_soc_percent, '{}'
    FROM mp WHERE last_soc_percent <= $4
    UNION ALL
    SELECT 'megapack_fault', unit_id, 'megapack', site_id, NULL, NULL, last_fault_codes
    FROM mp WHERE last_state = 'FAULT'
    UNION ALL
    SELECT 'megapack_offline', unit_id, 'megapack', site_id, NULL, NULL, '{}'
    FROM mp WHERE last_state = 'OFFLINE'
    UNION ALL
    SELECT 'unit_stale', unit_id, kind, site_id, fleet_id,
           extract(epoch FROM $1::timestamptz - last_seen)::float8, '{}'
    FROM units
    WHERE last_seen <= $1::timestamptz - make_interval(secs => $5)
    UNION ALL
    SELECT 'ev_battery_temp', unit_id, 'ev', NULL, fleet_id, last_temperature_c, '{}'
    FROM ev WHERE last_temperature_c >= $6
    UNION ALL
    SELECT 'ev_battery_low', unit_id, 'ev', NULL, fleet_id, last_soc_percent, '{}'
    FROM ev WHERE last_soc_percent <= $7
    UNION ALL
    SELECT 'ev_tire_pressure_low', unit_id, 'ev', NULL, fleet_id, tire_psi, '{}'
    FROM ev WHERE tire_psi <= $8
)
SELECT * FROM found WHERE rule = ANY($2::text[]) ORDER BY rule, unit_id
"""

# One history row (and outbox entry) for an alert as it is after the change. An event of a
# shelved alert is silenced (kept, never notified), but for shelving and unshelving itself.
EVENT = """
INSERT INTO alert_events (alert_id, event, event_uuid, actor, severity, previous_severity,
                          silenced, created_at, payload)
SELECT a.alert_id, $2, u.id, $3, a.severity, $4,
       $2 NOT IN ('shelved', 'unshelved') AND coalesce(a.shelved_until > now(), false),
       coalesce($5, now()),
       jsonb_build_object(
           'event_id', u.id, 'event', $2::text, 'at', coalesce($5, now()), 'by', $3::text,
           'alert_id', a.alert_id, 'rule', a.rule, 'unit_id', a.unit_id,
           'severity', a.severity, 'previous_severity', $4::text, 'state', a.state,
           'alert', to_jsonb(a))
FROM alerts a, (SELECT gen_random_uuid() AS id) u WHERE a.alert_id = $1
"""


async def try_evaluation_lock(conn: Conn) -> bool:
    """Take the evaluation lock for this transaction; false when another instance holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", EVALUATION_LOCK_KEY))


async def database_now(conn: Conn) -> datetime:
    """The database's clock (the start of the current transaction)."""
    now: datetime = await conn.fetchval("SELECT now()")
    return now


async def record_event(
    conn: Conn,
    *,
    alert_id: int,
    event: str,
    actor: str | None = None,
    previous_severity: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append an event to an alert's history (and to the notification outbox)."""
    await conn.execute(EVENT, alert_id, event, actor, previous_severity, at)


async def measurements(
    conn: Conn,
    *,
    now: datetime,
    enabled: tuple[str, ...],
    bounds: tuple[float, ...],
) -> list[asyncpg.Record]:
    """Rows (rule, unit_id, kind, site_id, fleet_id, value, fault_codes)."""
    return await conn.fetch(MEASUREMENTS, now, list(enabled), *bounds)


async def active_episodes(conn: Conn) -> list[asyncpg.Record]:
    """Active alerts (condition holding), locked for this transaction."""
    return await conn.fetch(
        f"SELECT alert_id, rule, unit_id, severity, fault_codes FROM alerts "  # noqa: S608
        f"WHERE state IN {ACTIVE} ORDER BY alert_id FOR UPDATE"
    )


async def timers(conn: Conn) -> list[asyncpg.Record]:
    """The running on/off-delay timers."""
    return await conn.fetch("SELECT * FROM alert_timers")


async def save_timers(
    conn: Conn,
    *,
    running: list[tuple[str, str, datetime | None, str | None, datetime | None]],
    stopped: list[tuple[str, str]],
) -> None:
    """Upsert the running timers (rule, unit, holding_since, severity, gone_since), drop others."""
    if running:
        await conn.executemany(
            """INSERT INTO alert_timers (rule, unit_id, holding_since, holding_severity,
                   gone_since) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (rule, unit_id) DO UPDATE SET holding_since = EXCLUDED.holding_since,
                   holding_severity = EXCLUDED.holding_severity,
                   gone_since = EXCLUDED.gone_since""",
            running,
        )
    if stopped:
        await conn.execute(
            "DELETE FROM alert_timers t USING unnest($1::text[], $2::text[]) AS s(rule, unit_id) "
            "WHERE t.rule = s.rule AND t.unit_id = s.unit_id",
            [rule for rule, _ in stopped],
            [unit for _, unit in stopped],
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
    at: datetime,
) -> int | None:
    """Open an alert and record `raised`; None when an episode is already active.

    A shelf still in force on the rule and unit's previous alert carries over to the new one.
    """
    alert_id: int | None = await conn.fetchval(
        f"""INSERT INTO alerts (rule, unit_id, kind, site_id, fleet_id, severity, peak_severity,
               message, value, threshold, fault_codes, raised_at, updated_at,
               shelved_until, shelved_at, shelved_by, shelve_reason)
           SELECT $1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, $11,
                  s.shelved_until, s.shelved_at, s.shelved_by, s.shelve_reason
           FROM (SELECT NULL) one LEFT JOIN LATERAL (
               SELECT shelved_until, shelved_at, shelved_by, shelve_reason FROM alerts
               WHERE rule = $1 AND unit_id = $2 AND shelved_until > now()
               ORDER BY alert_id DESC LIMIT 1) s ON TRUE
           ON CONFLICT (rule, unit_id) WHERE state IN {ACTIVE} DO NOTHING
           RETURNING alert_id""",  # noqa: S608 (fixed state list)
        rule, unit_id, kind, site_id, fleet_id, severity, message, value, threshold,
        fault_codes, at,
    )  # fmt: skip
    if alert_id is not None:
        await record_event(conn, alert_id=alert_id, event="raised", at=at)
    return alert_id


async def change_severity(
    conn: Conn,
    *,
    alert_id: int,
    severity: str,
    message: str,
    value: float | None,
    threshold: float | None,
    at: datetime,
) -> str | None:
    """Move an active alert to another severity; returns the one before (None: not active).

    Rising to a worse severity asks for a new acknowledgement; falling keeps it.
    """
    rank_new, rank_old = SEVERITY_RANK.format("$2::text"), SEVERITY_RANK.format("old.severity")
    previous: str | None = await conn.fetchval(
        f"""UPDATE alerts a SET severity = $2, message = $3, value = $4, threshold = $5,
               updated_at = $6,
               peak_severity = CASE WHEN {rank_new} > {SEVERITY_RANK.format("a.peak_severity")}
                                    THEN $2 ELSE a.peak_severity END,
               state = CASE WHEN {rank_new} > {rank_old} THEN 'active_unacknowledged'
                            ELSE a.state END
           FROM (SELECT alert_id, severity FROM alerts WHERE alert_id = $1) old
           WHERE a.alert_id = old.alert_id AND a.state IN {ACTIVE} AND a.severity <> $2
           RETURNING old.severity""",  # noqa: S608 (fixed expressions)
        alert_id, severity, message, value, threshold, at,
    )  # fmt: skip
    if previous is not None:
        await record_event(
            conn, alert_id=alert_id, event="severity_changed", previous_severity=previous, at=at
        )
    return previous


async def update_fault_codes(
    conn: Conn, *, alert_id: int, fault_codes: list[str], message: str
) -> None:
    """Keep an active FAULT alert's codes current (the episode goes on, no new event)."""
    await conn.execute(
        f"UPDATE alerts SET fault_codes = $2, message = $3, updated_at = now() "  # noqa: S608
        f"WHERE alert_id = $1 AND state IN {ACTIVE}",
        alert_id,
        fault_codes,
        message,
    )


async def clear_alert(conn: Conn, *, alert_id: int, at: datetime) -> bool:
    """End an active alert's episode (unacknowledged stays listed) and record `cleared`."""
    status = await conn.execute(
        f"""UPDATE alerts SET cleared_at = $2, updated_at = $2,
               state = CASE state WHEN 'active_acknowledged' THEN 'cleared'
                                  ELSE 'cleared_unacknowledged' END
           WHERE alert_id = $1 AND state IN {ACTIVE}""",  # noqa: S608 (fixed state list)
        alert_id,
        at,
    )
    if status.endswith(" 0"):
        return False
    await record_event(conn, alert_id=alert_id, event="cleared", at=at)
    return True


async def expire_shelves(conn: Conn) -> list[int]:
    """Unshelve the alerts whose shelf ran out (recording `unshelved`); their ids."""
    ids = [
        int(row["alert_id"])
        for row in await conn.fetch(
            """UPDATE alerts SET shelved_until = NULL, shelved_at = NULL, shelved_by = NULL,
                   shelve_reason = NULL, updated_at = now()
               WHERE shelved_until <= now() RETURNING alert_id""",
        )
    ]
    for alert_id in ids:
        await record_event(conn, alert_id=alert_id, event="unshelved")
    return ids
