"""Publish the alert events committed in the database to the `alerts` exchange, in order."""

from __future__ import annotations

import json
from typing import Protocol

import asyncpg

from db import monitoring_outbox as sql
from monitoring_service.rules import routing_key

PUBLISH_BATCH = 100


class EventPublisher(Protocol):
    """Publishes one alert event and waits for the broker's confirm (raises when it cannot)."""

    async def __call__(self, *, routing_key: str, body: bytes, message_id: str) -> None: ...


async def publish_events(*, pool: asyncpg.Pool, publish: EventPublisher) -> int:
    """Publish the outbox oldest first, marking each batch once confirmed; returns how many.

    An event is marked only after the broker confirmed it: a crash in between publishes it
    again (the same `event_id`), never loses it. None when another instance is publishing.
    """
    published = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            if not await sql.try_publish_lock(conn):
                return published
            events = await sql.unpublished_events(conn, limit=PUBLISH_BATCH)
            if not events:
                return published
            for event in events:
                body = event["payload"]
                await publish(
                    routing_key=routing_key(event["event"], event["rule"]),
                    body=body.encode(),
                    message_id=str(json.loads(body)["event_id"]),
                )
            await sql.mark_published(conn, event_ids=[event["event_id"] for event in events])
            published += len(events)
