"""SQL of the control service: commands, their forward-only status and the units' answers."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from control_service.model import (
    CLOCK_SKEW_S,
    CORRECTION_WINDOW_S,
    CORRECTS_EXPIRY,
    IMPLIED,
    PREDECESSORS,
    TIMEOUT_REASON,
    CommandRecord,
    NewCommand,
    UnitRecord,
    applied_status,
)
from db.command_groups import GroupQueries
from db.command_jobs import JobQueries
from db.command_rows import insert_many, record

# A unit's stamp may correct the service's conclusion only inside these bounds (see model).
_STAMP_BOUNDS = (
    f"$5::timestamptz >= created_at - INTERVAL '{CLOCK_SKEW_S} seconds'"
    f" AND now() <= {{concluded}} + INTERVAL '{CORRECTION_WINDOW_S} seconds'"
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
        bounds = _STAMP_BOUNDS.format(concluded="expired_at")
        where = f"({where} OR (status = 'expired' AND $5::timestamptz <= expires_at AND {bounds}))"
    else:
        sets.append("reason = COALESCE($3, reason)")
        # Every move takes the same five parameters; this one reads no stamp ($5), but naming
        # it keeps the prepared statement's arity (asyncpg refuses a fifth argument otherwise).
        where = f"{where} AND ($5::timestamptz IS NULL OR true)"
    if status == "completed":
        sets.append("failed_at = CASE WHEN status = 'failed' THEN NULL ELSE failed_at END")
        bounds = _STAMP_BOUNDS.format(concluded="failed_at")
        where = (
            f"({where} OR (status = 'failed' AND reason LIKE '{TIMEOUT_REASON}%'"
            f" AND $5::timestamptz <= failed_at AND {bounds}))"
        )
    return (
        f"UPDATE commands SET {', '.join(sets)},"  # noqa: S608 (names from the fixed tables above)
        " agent_id = COALESCE($4, agent_id)"
        f" WHERE command_id = $1 AND unit_id = $2 AND {where} RETURNING *"
    )


# `pending` over `scheduled` is the release (db.command_jobs), not an answer.
TRANSITIONS = {status: _transition_sql(status) for status in PREDECESSORS if status != "pending"}


class CommandRepository(JobQueries, GroupQueries):
    """The `commands`, `command_groups` and `command_answers` tables, through a pool."""

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

    async def insert_command(
        self, new: NewCommand
    ) -> tuple[CommandRecord | None, list[CommandRecord]]:
        """Store a command: (it, or None when the operator already used its idempotency key;
        the commands it superseded)."""
        async with self._pool.acquire() as conn, conn.transaction():
            stored, superseded = await insert_many(conn, [new])
        return (stored[0] if stored else None), superseded

    async def find_by_idempotency_key(self, requested_by: str, key: str) -> CommandRecord | None:
        """The command an operator created with this idempotency key, if any."""
        row = await self._pool.fetchrow(
            "SELECT * FROM commands WHERE requested_by = $1 AND idempotency_key = $2",
            requested_by,
            key,
        )
        return None if row is None else record(row)

    async def get_command(self, command_id: uuid.UUID) -> CommandRecord | None:
        """One command by id."""
        row = await self._pool.fetchrow("SELECT * FROM commands WHERE command_id = $1", command_id)
        return None if row is None else record(row)

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
        return [record(row) for row in rows]

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
            command_type = await conn.fetchval(
                "SELECT type FROM commands WHERE command_id = $1 FOR UPDATE", command_id
            )
            if command_type is None:
                return False, None
            if status == "lapsed":  # the end of a hold: a fact, not a status
                row = await conn.fetchrow(
                    """UPDATE commands SET lapsed_at = now(), updated_at = now()
                       WHERE command_id = $1 AND unit_id = $2 AND lapsed_at IS NULL
                       RETURNING *""",
                    command_id,
                    unit_id,
                )
            else:
                row = await conn.fetchrow(
                    TRANSITIONS[applied_status(status, command_type)],
                    command_id,
                    unit_id,
                    reason,
                    agent_id,
                    unit_at,
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
        return moved, record(row)

    async def answers(self, command_id: uuid.UUID) -> list[asyncpg.Record]:
        """Every answer received for a command, oldest first."""
        return list(
            await self._pool.fetch(
                "SELECT * FROM command_answers WHERE command_id = $1 ORDER BY id", command_id
            )
        )
