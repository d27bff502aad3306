"""SQL of group commands: the units a selector names, and a group stored with its commands."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from control_service.model import (
    CommandRecord,
    GroupMember,
    GroupRecord,
    NewCommand,
    NewGroup,
    UnitRecord,
)
from db.command_rows import insert_many

_UNIT = "SELECT unit_id, kind, last_state, last_seen, rated_power_kw FROM units"


def _group(row: asyncpg.Record) -> NewGroup:
    values = {name: row[name] for name in NewGroup.__slots__}
    values["selector"] = json.loads(row["selector"])
    values["params"] = json.loads(row["params"])
    return NewGroup(**values)


class GroupQueries:
    """What group commands ask of `units`, `commands` and `command_groups`."""

    _pool: asyncpg.Pool

    async def units_for(self, selector: dict[str, Any]) -> list[UnitRecord]:
        """The units a selector names now (`site_id`, `fleet_id` or `unit_ids`), by id."""
        if "unit_ids" in selector:
            query, value = f"{_UNIT} WHERE unit_id = ANY($1::text[])", selector["unit_ids"]
        elif "site_id" in selector:
            query, value = f"{_UNIT} WHERE site_id = $1", selector["site_id"]
        else:
            query, value = f"{_UNIT} WHERE fleet_id = $1", selector["fleet_id"]
        rows = await self._pool.fetch(query + " ORDER BY unit_id", value)
        return [UnitRecord(**dict(row)) for row in rows]

    async def insert_group(
        self, group: NewGroup, news: list[NewCommand]
    ) -> tuple[list[CommandRecord], list[CommandRecord]] | None:
        """Store a group and its commands in one transaction: (stored, superseded), or None
        when the operator already used the group's idempotency key."""
        async with self._pool.acquire() as conn, conn.transaction():
            created = await conn.fetchval(
                """INSERT INTO command_groups (group_id, selector, type, params, ttl_s,
                       not_before, requested_by, idempotency_key, request_digest, command_count)
                   VALUES ($1, $2::jsonb, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)
                   ON CONFLICT ON CONSTRAINT command_groups_idempotency_key DO NOTHING
                   RETURNING group_id""",
                group.group_id,
                json.dumps(group.selector),
                group.type,
                json.dumps(group.params),
                group.ttl_s,
                group.not_before,
                group.requested_by,
                group.idempotency_key,
                group.request_digest,
                group.command_count,
            )
            if created is None:
                return None
            return await insert_many(conn, news)

    async def find_group_by_idempotency_key(self, requested_by: str, key: str) -> NewGroup | None:
        """The group an operator created with this idempotency key, if any."""
        row = await self._pool.fetchrow(
            "SELECT * FROM command_groups WHERE requested_by = $1 AND idempotency_key = $2",
            requested_by,
            key,
        )
        return None if row is None else _group(row)

    async def get_group(self, group_id: uuid.UUID) -> GroupRecord | None:
        """A group and each unit's command."""
        row = await self._pool.fetchrow(
            "SELECT * FROM command_groups WHERE group_id = $1", group_id
        )
        if row is None:
            return None
        members = await self._pool.fetch(
            """SELECT command_id, unit_id, status, reason, achieved FROM commands
               WHERE group_id = $1 ORDER BY unit_id""",
            group_id,
        )
        return GroupRecord(
            group=_group(row),
            created_at=row["created_at"],
            members=[
                GroupMember(
                    command_id=m["command_id"],
                    unit_id=m["unit_id"],
                    status=m["status"],
                    reason=m["reason"],
                    achieved=None if m["achieved"] is None else json.loads(m["achieved"]),
                )
                for m in members
            ],
        )
