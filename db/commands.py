"""SQL of the control service: commands, their forward-only status and the units' answers."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import asyncpg

from control_service.model import (
    CORRECTS_EXPIRY,
    IMPLIED,
    PREDECESSORS,
    TIMEOUT_REASON,
    CommandRecord,
    NewCommand,
    UnitRecord,
)


def _transition_sql(status: str) -> str:
    sets = [f"status = '{status}'", f"{status}_at = now()", "updated_at = now()"]
    sets += [f"{step}_at = COALESCE({step}_at, now())" for step in IMPLIED.get(status, ())]
    sets += ["delivery_error = NULL"] if status == "sent" else []
    where = "status IN (" + ", ".join(f"'{before}'" for before in PREDECESSORS[status]) + ")"
    if status in CORRECTS_EXPIRY:
        sets.append("expired_at = CASE WHEN status = 'expired' THEN NULL ELSE expired_at END")
        sets.append(
            "reason = CASE WHEN status IN ('expired', 'failed') THEN $3"
            " ELSE COALESCE($3, reason) END"
        )
        where = f"({where} OR (status = 'expired' AND $5::timestamptz <= expires_at))"
    else:
        sets.append("reason = COALESCE($3, reason)")
    if status == "completed":
        sets.append("failed_at = CASE WHEN status = 'failed' THEN NULL ELSE failed_at END")
        where = (
            f"({where} OR (status = 'failed' AND reason LIKE '{TIMEOUT_REASON}%'"
            " AND $5::timestamptz <= failed_at))"
        )
    return (
        f"UPDATE commands SET {', '.join(sets)},"  # noqa: S608 (names from the fixed tables above)
        " agent_id = COALESCE($4, agent_id)"
        f" WHERE command_id = $1 AND unit_id = $2 AND {where} RETURNING *"
    )


TRANSITIONS = {status: _transition_sql(status) for status in PREDECESSORS}


def _record(row: asyncpg.Record) -> CommandRecord:
    """A `commands` row as a CommandRecord."""
    values = {name: row[name] for name in CommandRecord.__slots__}
    values["params"] = json.loads(row["params"])
    return CommandRecord(**values)


class CommandRepository:
    """The `commands` and `command_answers` tables, through a connection pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def reachable(self, timeout_s: float = 2.0) -> bool:
        """The database answers a trivial query in time."""
        try:
            return bool(await self._pool.fetchval("SELECT 1", timeout=timeout_s) == 1)
        except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError):
            return False

    async def find_unit(self, unit_id: str) -> UnitRecord | None:
        """The unit's kind, latest state and rated power, or None when it was never seen."""
        row = await self._pool.fetchrow(
            """SELECT unit_id, kind, last_state, last_seen, rated_power_kw
               FROM units WHERE unit_id = $1""",
            unit_id,
        )
        return None if row is None else UnitRecord(**dict(row))

    async def insert_command(self, new: NewCommand) -> CommandRecord | None:
        """Store a pending command; None when the same operator already used its idempotency key."""
        row = await self._pool.fetchrow(
            """INSERT INTO commands (command_id, unit_id, kind, type, params, ttl_s, requested_by,
                   idempotency_key, request_digest, expires_at, publish_attempts, last_publish_at)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9,
                   now() + $6::integer * INTERVAL '1 second', 1, now())
               ON CONFLICT ON CONSTRAINT commands_idempotency_key DO NOTHING
               RETURNING *""",
            new.command_id,
            new.unit_id,
            new.kind,
            new.type,
            json.dumps(new.params),
            new.ttl_s,
            new.requested_by,
            new.idempotency_key,
            new.request_digest,
        )
        return None if row is None else _record(row)

    async def find_by_idempotency_key(self, requested_by: str, key: str) -> CommandRecord | None:
        """The command an operator created with this idempotency key, if any."""
        row = await self._pool.fetchrow(
            "SELECT * FROM commands WHERE requested_by = $1 AND idempotency_key = $2",
            requested_by,
            key,
        )
        return None if row is None else _record(row)

    async def get_command(self, command_id: uuid.UUID) -> CommandRecord | None:
        """One command by id."""
        row = await self._pool.fetchrow("SELECT * FROM commands WHERE command_id = $1", command_id)
        return None if row is None else _record(row)

    async def list_unit_commands(
        self, unit_id: str, *, limit: int, before: int | None = None, status: str | None = None
    ) -> list[CommandRecord]:
        """A unit's commands, newest first, created before the one numbered `before`."""
        rows = await self._pool.fetch(
            """SELECT * FROM commands
               WHERE unit_id = $1 AND ($2::bigint IS NULL OR seq < $2)
                 AND ($3::text IS NULL OR status = $3)
               ORDER BY seq DESC
               LIMIT $4""",
            unit_id,
            before,
            status,
            limit,
        )
        return [_record(row) for row in rows]

    async def mark_sent(self, command_id: uuid.UUID, unit_id: str) -> CommandRecord | None:
        """`pending` -> `sent` after the broker's confirm; None when it had already moved on."""
        row = await self._pool.fetchrow(TRANSITIONS["sent"], command_id, unit_id, None, None)
        return None if row is None else _record(row)

    async def note_delivery_error(self, command_id: uuid.UUID, error: str) -> None:
        """Remember why a publish was not confirmed (shown to operators while it is pending)."""
        await self._pool.execute(
            "UPDATE commands SET delivery_error = $2, updated_at = now() WHERE command_id = $1",
            command_id,
            error[:500],
        )

    async def apply_answer(
        self,
        *,
        command_id: uuid.UUID,
        unit_id: str,
        status: str,
        reason: str | None,
        agent_id: str | None,
        unit_at: datetime | None,
    ) -> tuple[bool, CommandRecord | None]:
        """Record a unit's answer and move the status if allowed: (applied, the command or None)."""
        async with self._pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "SELECT 1 FROM commands WHERE command_id = $1 FOR UPDATE", command_id
            )
            if found is None:
                return False, None
            row = await conn.fetchrow(
                TRANSITIONS[status], command_id, unit_id, reason, agent_id, unit_at
            )
            moved = row is not None
            await conn.execute(
                """INSERT INTO command_answers
                       (command_id, status, reason, agent_id, unit_at, applied)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                command_id,
                status,
                reason,
                agent_id,
                unit_at,
                moved,
            )
            if row is None:
                row = await conn.fetchrow(
                    "SELECT * FROM commands WHERE command_id = $1", command_id
                )
        assert row is not None  # locked above, so still there
        return moved, _record(row)

    async def expire_overdue(self, *, grace_s: float) -> list[CommandRecord]:
        """Mark `expired` every pending or sent command whose expiry passed `grace_s` ago."""
        rows = await self._pool.fetch(
            """UPDATE commands SET status = 'expired', expired_at = now(), updated_at = now(),
                   reason = CASE WHEN status = 'pending'
                       THEN 'not delivered before expiry' || COALESCE(': ' || delivery_error, '')
                       ELSE 'no acknowledgement from the unit before expiry' END
               WHERE status = ANY($1::text[])
                 AND expires_at < now() - $2::float8 * INTERVAL '1 second'
               RETURNING *""",
            list(PREDECESSORS["expired"]),
            grace_s,
        )
        return [_record(row) for row in rows]

    async def fail_unfinished(self, *, timeout_s: float) -> list[CommandRecord]:
        """Mark `failed` every command acknowledged over `timeout_s` ago that never finished."""
        rows = await self._pool.fetch(
            """UPDATE commands SET status = 'failed', failed_at = now(), updated_at = now(),
                   reason = $2 || $1::float8 || ' s of acknowledgement'
               WHERE status = 'acknowledged'
                 AND acknowledged_at < now() - $1::float8 * INTERVAL '1 second'
               RETURNING *""",
            timeout_s,
            TIMEOUT_REASON,
        )
        return [_record(row) for row in rows]

    async def claim_pending(self, *, idle_s: float, limit: int = 100) -> list[CommandRecord]:
        """Claim pending, unexpired commands not published for `idle_s` (one claimer per row)."""
        rows = await self._pool.fetch(
            """UPDATE commands SET publish_attempts = publish_attempts + 1, last_publish_at = now()
               WHERE command_id IN (
                   SELECT command_id FROM commands
                   WHERE status = 'pending' AND expires_at > now()
                     AND COALESCE(last_publish_at, created_at)
                         < now() - $1::float8 * INTERVAL '1 second'
                   ORDER BY created_at LIMIT $2
                   FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            idle_s,
            limit,
        )
        return [_record(row) for row in rows]

    async def answers(self, command_id: uuid.UUID) -> list[asyncpg.Record]:
        """Every answer received for a command, oldest first."""
        return list(
            await self._pool.fetch(
                "SELECT * FROM command_answers WHERE command_id = $1 ORDER BY id", command_id
            )
        )
