"""SQL of the alert-event outbox: the events not published yet, oldest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from db.monitoring import Conn

# One publisher at a time drains the outbox, so events leave in the order they were written.
PUBLISH_LOCK_KEY = 0x414C5254  # "ALRT"


async def try_publish_lock(conn: Conn) -> bool:
    """Take the publishing lock for this transaction; false when another instance holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PUBLISH_LOCK_KEY))


async def unpublished_events(conn: Conn, *, limit: int) -> list[asyncpg.Record]:
    """The oldest events to notify: (event_id, event, rule, payload as JSON text)."""
    return await conn.fetch(
        """SELECT event_id, event, payload->>'rule' AS rule, payload::text AS payload
           FROM alert_events WHERE published_at IS NULL AND NOT silenced
           ORDER BY event_id LIMIT $1""",
        limit,
    )


async def mark_published(conn: Conn, *, event_ids: list[int]) -> None:
    """Record that these events were confirmed by the broker."""
    await conn.execute(
        "UPDATE alert_events SET published_at = now() WHERE event_id = ANY($1::bigint[])",
        event_ids,
    )


async def outbox_backlog(conn: Conn) -> int:
    """How many events wait to be published."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM alert_events WHERE published_at IS NULL AND NOT silenced"
        )
    )
