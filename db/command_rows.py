"""Rows of the `commands` table: reading them, and storing many at once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from control_service.model import CommandRecord, NewCommand

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]


def record(row: asyncpg.Record) -> CommandRecord:
    """A `commands` row as a CommandRecord."""
    values = {name: row[name] for name in CommandRecord.__slots__}
    values["params"] = json.loads(row["params"])
    values["achieved"] = None if row["achieved"] is None else json.loads(row["achieved"])
    return CommandRecord(**values)


_INSERT = """
    INSERT INTO commands (command_id, unit_id, kind, type, params, ttl_s, requested_by,
        idempotency_key, request_digest, not_before, status, reason, group_id, expires_at,
        rejected_at, publish_attempts)
    SELECT n.command_id, n.unit_id, n.kind, n.type, n.params::jsonb, n.ttl_s, n.requested_by,
        n.idempotency_key, n.request_digest, n.not_before, n.status, n.reason, n.group_id,
        COALESCE(n.not_before, now()) + n.ttl_s * INTERVAL '1 second',
        CASE WHEN n.status = 'rejected' THEN now() END, 0
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[],
        $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[], $12::text[],
        $13::uuid[])
        AS n(command_id, unit_id, kind, type, params, ttl_s, requested_by, idempotency_key,
            request_digest, not_before, status, reason, group_id)
    ON CONFLICT ON CONSTRAINT commands_idempotency_key DO NOTHING
    RETURNING *"""

# A newer command of the same type ends the older ones that were never handed to the broker:
# `scheduled`, or `pending` and not yet claimed for publishing. One already being published
# cannot be recalled; the unit refuses it if it arrives after the newer one (its seq is older).
_SUPERSEDE = """
    WITH newer AS (
        SELECT command_id, unit_id, type, seq FROM commands
        WHERE command_id = ANY($1::uuid[]) AND status IN ('scheduled', 'pending'))
    UPDATE commands c SET status = 'superseded', superseded_at = now(), updated_at = now(),
        superseded_by = newer.command_id, reason = 'superseded by command ' || newer.command_id
    FROM newer
    WHERE c.unit_id = newer.unit_id AND c.type = newer.type AND c.seq < newer.seq
      AND (c.status = 'scheduled' OR (c.status = 'pending' AND c.publish_attempts = 0))
    RETURNING c.*"""


async def insert_many(
    conn: Conn, news: list[NewCommand]
) -> tuple[list[CommandRecord], list[CommandRecord]]:
    """Store commands in one statement and supersede what they replace: (stored, superseded)."""
    columns = [
        [new.command_id for new in news],
        [new.unit_id for new in news],
        [new.kind for new in news],
        [new.type for new in news],
        [json.dumps(new.params) for new in news],
        [new.ttl_s for new in news],
        [new.requested_by for new in news],
        [new.idempotency_key for new in news],
        [new.request_digest for new in news],
        [new.not_before for new in news],
        [new.status for new in news],
        [new.reason for new in news],
        [new.group_id for new in news],
    ]
    stored = [record(row) for row in await conn.fetch(_INSERT, *columns)]
    if not stored:
        return [], []
    superseded = await conn.fetch(_SUPERSEDE, [command.command_id for command in stored])
    return stored, [record(row) for row in superseded]
