"""A completion held up past the completion timeout corrects the timeout's `failed` only when
the unit stamped it before that conclusion (the expiry rule, applied to the other timeout)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from common.db import create_pool
from db.commands import CommandRepository
from tests.support.readings import unique


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[CommandRepository]:
    pool = await create_pool(database_url, max_size=2)
    yield CommandRepository(pool)
    await pool.close()


async def _acknowledged_command(db: asyncpg.Connection, unit: str) -> uuid.UUID:
    command_id = uuid.uuid4()
    await db.execute(
        """INSERT INTO commands (command_id, unit_id, kind, type, params, ttl_s, requested_by,
               request_digest, created_at, expires_at, status, sent_at, acknowledged_at)
           VALUES ($1, $2, 'megapack', 'set_soc_limits',
               '{"min_percent": 10, "max_percent": 90}', 30, 'ops', 'x',
               now() - INTERVAL '60 s', now() - INTERVAL '30 s', 'acknowledged',
               now() - INTERVAL '60 s', now() - INTERVAL '59 s')""",
        command_id,
        unit,
    )
    return command_id


async def test_a_completion_stamped_before_the_timeout_replaces_failed(
    repository: CommandRepository, db: asyncpg.Connection
) -> None:
    unit = unique("MP-TC")
    in_time, too_late = await _acknowledged_command(db, unit), await _acknowledged_command(db, unit)
    failed = {c.command_id for c in await repository.fail_unfinished(timeout_s=20)}
    assert {in_time, too_late} <= failed
    failed_at = await db.fetchval("SELECT failed_at FROM commands WHERE command_id = $1", in_time)
    await asyncio.sleep(0.05)
    for command_id, stamped in ((in_time, failed_at - timedelta(seconds=5)),
                                (too_late, failed_at + timedelta(seconds=5))):  # fmt: skip
        await repository.apply_answer(
            command_id=command_id, unit_id=unit, status="completed", reason=None,
            agent_id="sim", unit_at=stamped,
        )  # fmt: skip
    rows = {
        r["command_id"]: r
        for r in await db.fetch(
            "SELECT command_id, status, failed_at, reason FROM commands WHERE unit_id = $1", unit
        )
    }
    assert (rows[in_time]["status"], rows[in_time]["failed_at"], rows[in_time]["reason"]) == (
        "completed",
        None,
        None,
    )
    assert rows[too_late]["status"] == "failed"
    assert rows[too_late]["reason"].startswith("no completion reported within 20")
