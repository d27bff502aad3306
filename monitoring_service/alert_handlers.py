"""What operators do with alerts: list, show, acknowledge, shelve, unshelve, assign.

Handlers take the pool and validated values, return API shapes, and raise `NotFound` /
`Conflict` (the routes turn those into 404 / 409). No SQL here: that is db.monitoring_alert_*.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from db import monitoring_alert_actions as sql
from db.monitoring_alert_actions import AlertFilter
from monitoring_service.schemas import AlertDetail, AlertEvent, AlertPage, AlertPublic

if TYPE_CHECKING:
    from db.monitoring import Conn

# `state=active` is the operator's alarm list: what is active or still unacknowledged.
LISTED = ("active_unacknowledged", "active_acknowledged", "cleared_unacknowledged")


class NotFound(Exception):
    """No such alert."""


class Conflict(Exception):
    """The alert's state forbids the action."""


def list_filter(
    *,
    state: str | None,
    severity: str | None,
    site_id: str | None,
    unit_id: str | None,
    rule: str | None,
    shelved: bool | None,
    cursor: int | None,
) -> AlertFilter:
    """The filter a list request means: `state=active` hides shelved alerts unless asked."""
    if state == "active":
        states: tuple[str, ...] | None = LISTED
        shelved = False if shelved is None else shelved
    else:
        states = (state,) if state is not None else None
    return AlertFilter(
        states=states, severity=severity, site_id=site_id, unit_id=unit_id, rule=rule,
        shelved=shelved, before_id=cursor,
    )  # fmt: skip


async def list_alerts(*, pool: asyncpg.Pool, where: AlertFilter, limit: int) -> AlertPage:
    """A page of alerts, newest first."""
    async with pool.acquire() as conn:
        rows = await sql.list_alerts(conn, where=where, limit=limit)
    items = [AlertPublic.from_row(row) for row in rows]
    more = len(items) == limit
    return AlertPage(items=items, next_cursor=str(items[-1].alert_id) if more else None)


async def get_alert(*, pool: asyncpg.Pool, alert_id: int) -> AlertDetail:
    """One alert with its history."""
    async with pool.acquire() as conn:
        row = await sql.get_alert(conn, alert_id=alert_id)
        if row is None:
            raise NotFound("no such alert")
        events = await sql.alert_events(conn, alert_id=alert_id)
    return AlertDetail(
        **AlertPublic.from_row(row).model_dump(),
        events=[AlertEvent.from_row(event) for event in events],
    )


async def _public(conn: Conn, alert_id: int) -> AlertPublic:
    row = await sql.get_alert(conn, alert_id=alert_id)
    if row is None:
        raise NotFound("no such alert")
    return AlertPublic.from_row(row)


async def acknowledge(*, pool: asyncpg.Pool, alert_id: int, by: str) -> AlertPublic:
    """Acknowledge an active or cleared alert (twice is harmless)."""
    async with pool.acquire() as conn:
        if await sql.acknowledge(conn, alert_id=alert_id, by=by) is None:
            raise NotFound("no such alert")
        return await _public(conn, alert_id)


async def shelve(
    *, pool: asyncpg.Pool, alert_id: int, by: str, for_s: float, reason: str
) -> AlertPublic:
    """Shelve: hidden from the active list and not notified until it expires or is undone."""
    async with pool.acquire() as conn:
        state = await sql.shelve(conn, alert_id=alert_id, by=by, for_s=for_s, reason=reason)
        if state is None:
            raise NotFound("no such alert")
        if state == "cleared":
            raise Conflict("the alert is cleared and acknowledged: nothing to shelve")
        return await _public(conn, alert_id)


async def unshelve(*, pool: asyncpg.Pool, alert_id: int, by: str) -> AlertPublic:
    """End a shelf early (an alert not shelved is left as it is)."""
    async with pool.acquire() as conn:
        if await sql.unshelve(conn, alert_id=alert_id, by=by) is None:
            raise NotFound("no such alert")
        return await _public(conn, alert_id)


async def assign(*, pool: asyncpg.Pool, alert_id: int, by: str, to: str | None) -> AlertPublic:
    """Hand an alert to someone, or to nobody."""
    async with pool.acquire() as conn:
        if await sql.assign(conn, alert_id=alert_id, by=by, to=to) is None:
            raise NotFound("no such alert")
        return await _public(conn, alert_id)
