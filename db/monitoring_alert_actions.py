"""SQL of what operators do with alerts: list, show, acknowledge, shelve, unshelve, assign."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from db.monitoring_alerts import record_event

if TYPE_CHECKING:
    from db.monitoring import Conn

SHELVED = "coalesce(shelved_until > now(), false)"
COLUMNS = f"*, {SHELVED} AS shelved"


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """What the alert list is narrowed to; None: any."""

    states: tuple[str, ...] | None = None
    severity: str | None = None
    site_id: str | None = None
    unit_id: str | None = None
    rule: str | None = None
    shelved: bool | None = None
    before_id: int | None = None


async def list_alerts(conn: Conn, *, where: AlertFilter, limit: int) -> list[asyncpg.Record]:
    """Alerts newest first, narrowed by the filter, below a cursor id."""
    return await conn.fetch(
        f"""SELECT {COLUMNS} FROM alerts
            WHERE ($1::text[] IS NULL OR state = ANY($1::text[]))
              AND ($2::text IS NULL OR severity = $2) AND ($3::text IS NULL OR site_id = $3)
              AND ($4::text IS NULL OR unit_id = $4) AND ($5::text IS NULL OR rule = $5)
              AND ($6::boolean IS NULL OR {SHELVED} = $6)
              AND ($7::bigint IS NULL OR alert_id < $7)
            ORDER BY alert_id DESC LIMIT $8""",  # noqa: S608 (fixed expressions)
        list(where.states) if where.states is not None else None,
        where.severity,
        where.site_id,
        where.unit_id,
        where.rule,
        where.shelved,
        where.before_id,
        limit,
    )


async def get_alert(conn: Conn, *, alert_id: int) -> asyncpg.Record | None:
    """One alert by id."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM alerts WHERE alert_id = $1",  # noqa: S608 (fixed columns)
        alert_id,
    )


async def alert_events(conn: Conn, *, alert_id: int) -> list[asyncpg.Record]:
    """An alert's history, oldest first."""
    return await conn.fetch(
        """SELECT event_uuid AS event_id, event, created_at AS at, actor AS by, severity,
                  previous_severity, silenced, published_at IS NOT NULL AS published
           FROM alert_events e WHERE alert_id = $1 ORDER BY e.event_id""",
        alert_id,
    )


async def _locked_state(conn: Conn, alert_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT state, {SHELVED} AS shelved FROM alerts "  # noqa: S608 (fixed columns)
        "WHERE alert_id = $1 FOR UPDATE",
        alert_id,
    )


async def acknowledge(conn: Conn, *, alert_id: int, by: str) -> str | None:
    """Acknowledge (active or cleared); returns the state afterwards, None: no such alert.

    Acknowledging twice changes nothing and records no second event.
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE alerts SET acknowledged_at = now(), acknowledged_by = $2,
                   updated_at = now(),
                   state = CASE state WHEN 'active_unacknowledged' THEN 'active_acknowledged'
                                      ELSE 'cleared' END
               WHERE alert_id = $1
                 AND state IN ('active_unacknowledged', 'cleared_unacknowledged')
               RETURNING state""",
            alert_id,
            by,
        )
        if row is not None:
            await record_event(conn, alert_id=alert_id, event="acknowledged", actor=by)
            return str(row["state"])
        state: str | None = await conn.fetchval(
            "SELECT state FROM alerts WHERE alert_id = $1", alert_id
        )
        return state


async def shelve(conn: Conn, *, alert_id: int, by: str, for_s: float, reason: str) -> str | None:
    """Shelve for `for_s` seconds (a new shelf replaces the old); the state, None: no alert.

    A cleared (and acknowledged) alert has nothing to shelve: it is left unchanged.
    """
    async with conn.transaction():
        current = await _locked_state(conn, alert_id)
        if current is None or current["state"] == "cleared":
            return None if current is None else str(current["state"])
        await conn.execute(
            """UPDATE alerts SET shelved_until = now() + make_interval(secs => $2),
                   shelved_at = now(), shelved_by = $3, shelve_reason = $4, updated_at = now()
               WHERE alert_id = $1""",
            alert_id,
            for_s,
            by,
            reason,
        )
        await record_event(conn, alert_id=alert_id, event="shelved", actor=by)
        return str(current["state"])


async def unshelve(conn: Conn, *, alert_id: int, by: str) -> bool | None:
    """End a shelf early; whether one was in force (None: no such alert)."""
    async with conn.transaction():
        current = await _locked_state(conn, alert_id)
        if current is None or not current["shelved"]:
            return None if current is None else False
        await conn.execute(
            """UPDATE alerts SET shelved_until = NULL, shelved_at = NULL, shelved_by = NULL,
                   shelve_reason = NULL, updated_at = now() WHERE alert_id = $1""",
            alert_id,
        )
        await record_event(conn, alert_id=alert_id, event="unshelved", actor=by)
        return True


async def assign(conn: Conn, *, alert_id: int, by: str, to: str | None) -> bool | None:
    """Hand an alert to someone (None: to nobody); whether it changed (None: no alert)."""
    async with conn.transaction():
        current = await _locked_state(conn, alert_id)
        if current is None:
            return None
        status = await conn.execute(
            """UPDATE alerts SET assigned_to = $2, assigned_by = $3, assigned_at = now(),
                   updated_at = now()
               WHERE alert_id = $1 AND assigned_to IS DISTINCT FROM $2""",
            alert_id,
            to,
            by,
        )
        if status.endswith(" 0"):
            return False
        await record_event(conn, alert_id=alert_id, event="assigned", actor=by)
        return True


async def open_alerts_by_severity(conn: Conn) -> list[asyncpg.Record]:
    """Per severity: active alerts not shelved, and listed ones not acknowledged."""
    return await conn.fetch(
        f"""SELECT severity,
                  count(*) FILTER (WHERE state IN ('active_unacknowledged',
                                                   'active_acknowledged')) AS open,
                  count(*) FILTER (WHERE state IN ('active_unacknowledged',
                                                   'cleared_unacknowledged')) AS active
           FROM alerts WHERE state <> 'cleared' AND NOT {SHELVED}
           GROUP BY severity""",  # noqa: S608 (fixed expressions)
    )
