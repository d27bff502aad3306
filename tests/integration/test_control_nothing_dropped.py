"""Nothing dropped on the command path: answers outlive a database outage longer than the
retry budget (via the dead-letter queue), a command no queue takes fails at once, and a
unit's clock cannot move a final status."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest

from common.db import create_pool
from db.commands import CommandRepository
from proto.megapack.v1 import commands_pb2 as pb
from tests.integration.test_control_api import JSON, add_unit, control_service
from tests.integration.test_control_delivery import SOC_LIMITS, ScriptedAgent, wait_status
from tests.integration.test_control_groups import delivered
from tests.integration.test_control_outages import proxy_for, through
from tests.support.readings import unique
from tests.support.stack import OPERATOR_SECRET

FINAL = {"completed", "rejected", "failed", "expired", "superseded"}


def queue_messages(name: str) -> int:
    """Messages in a queue, ready and unacknowledged (what the broker holds for us)."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "messages", "--no-table-headers"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    for line in listed.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return int(parts[1])
    return 0


async def test_every_answer_lands_after_an_outage_longer_than_the_retry_budget(
    stack_env: dict[str, str], amqp_url: str, amqp_prefix: str
) -> None:
    prefix = f"{amqp_prefix}dlq."
    database = proxy_for(stack_env["DATABASE_URL"], 5432)
    service = control_service(
        {**stack_env, "AMQP_PREFIX": prefix,
         "DATABASE_URL": through(stack_env["DATABASE_URL"], database)},
        ACK_RETRY_FOR_S="0.2",  # 10 deliveries of 0.2 s each: dead-lettered within seconds
    ).start().wait_ready(60)  # fmt: skip
    agent = ScriptedAgent(amqp_url, prefix)
    db = await asyncpg.connect(stack_env["DATABASE_URL"])
    unit = await add_unit(db)
    await agent.start(unit)
    try:
        async with httpx.AsyncClient(
            base_url=service.url, headers={"X-API-Key": OPERATOR_SECRET, **JSON}, timeout=10
        ) as http:
            created = []
            for _ in range(4):
                answer = await http.post(
                    f"/v1/units/{unit}/commands", json={**SOC_LIMITS, "ttl_s": 300}
                )
                assert answer.status_code == 202, answer.text
                created.append(answer.json()["command_id"])
            commands = [(await agent.next())[0] for _ in created]
            database.cut()
            for command in commands:
                await agent.answer(command, pb.COMMAND_ACK_STATUS_ACKNOWLEDGED)
                await agent.answer(command, pb.COMMAND_ACK_STATUS_COMPLETED)
            dlq = f"{prefix}control.acks.dlq"
            deadline = time.monotonic() + 120
            while await asyncio.to_thread(queue_messages, dlq) < 2 * len(commands):
                assert time.monotonic() < deadline, "answers never reached the dead-letter queue"
                await asyncio.sleep(0.5)  # the barrier: every answer is past its retry budget
            assert await asyncio.to_thread(queue_messages, f"{prefix}control.acks") == 0
            database.restore()
            ended = [await wait_status(http, c, FINAL, timeout_s=60) for c in created]
        assert [command["status"] for command in ended] == ["completed"] * len(created)
        assert service.output().count("answer_from_dead_letter_queue") >= 1
    finally:
        service.stop()
        database.close()
        await agent.close()
        await db.close()


async def test_a_command_no_unit_queue_takes_is_failed_at_once(
    stack_env: dict[str, str], db: asyncpg.Connection
) -> None:
    prefix = f"{stack_env['AMQP_PREFIX']}unroutable."  # no agent and no sink under it
    service = control_service({**stack_env, "AMQP_PREFIX": prefix}).start().wait_ready(60)
    unit = await add_unit(db)
    try:
        async with httpx.AsyncClient(
            base_url=service.url, headers={"X-API-Key": OPERATOR_SECRET, **JSON}, timeout=10
        ) as http:
            answer = await http.post(f"/v1/units/{unit}/commands", json=SOC_LIMITS)
            group = await http.post(
                "/v1/command-groups", json={**SOC_LIMITS, "selector": {"unit_ids": [unit]}}
            )
            members = await delivered(http, group.json()["group_id"])
    finally:
        service.stop()
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "failed"
    assert "no unit agent queue takes it" in answer.json()["reason"]
    assert answer.json()["sent_at"] is None
    assert members["counts"] == {"failed": 1}


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[CommandRepository]:
    pool = await create_pool(database_url, max_size=2)
    yield CommandRepository(pool)
    await pool.close()


async def _expired(db: asyncpg.Connection, unit: str, *, concluded_s_ago: float) -> uuid.UUID:
    command_id = uuid.uuid4()
    await db.execute(
        """INSERT INTO commands (command_id, unit_id, kind, type, params, ttl_s, requested_by,
               request_digest, created_at, expires_at, status, sent_at, expired_at)
           VALUES ($1, $2, 'megapack', 'set_soc_limits', '{}', 30, 'ops', 'x',
               now() - INTERVAL '40 s' - $3::float8 * INTERVAL '1 s',
               now() - INTERVAL '10 s' - $3::float8 * INTERVAL '1 s', 'expired',
               now() - INTERVAL '40 s' - $3::float8 * INTERVAL '1 s',
               now() - $3::float8 * INTERVAL '1 s')""",
        command_id,
        unit,
        concluded_s_ago,
    )
    return command_id


async def test_a_skewed_unit_clock_cannot_move_a_final_status(
    repository: CommandRepository, db: asyncpg.Connection
) -> None:
    unit = unique("MP-SKEW")
    honest, behind = (
        await _expired(db, unit, concluded_s_ago=1),
        await _expired(db, unit, concluded_s_ago=1),
    )
    stale = await _expired(db, unit, concluded_s_ago=3600)  # concluded an hour ago
    created = {
        r["command_id"]: r["created_at"]
        for r in await db.fetch(
            "SELECT command_id, created_at FROM commands WHERE unit_id = $1", unit
        )
    }
    stamps = {
        honest: created[honest] + timedelta(seconds=1),  # acted in time, answer held up
        behind: created[behind] - timedelta(hours=1),  # a clock an hour behind: "in time" always
        stale: created[stale] + timedelta(seconds=1),  # in time, but long after the conclusion
    }
    for command_id, unit_at in stamps.items():
        moved, _ = await repository.apply_answer(
            command_id=command_id, unit_id=unit, status="completed", reason=None,
            agent_id="sim", unit_at=unit_at,
        )  # fmt: skip
        assert moved == (command_id == honest)
    statuses = {
        r["command_id"]: r["status"]
        for r in await db.fetch("SELECT command_id, status FROM commands WHERE unit_id = $1", unit)
    }
    assert statuses == {honest: "completed", behind: "expired", stale: "expired"}
    recorded = await db.fetchval(
        "SELECT count(*) FROM command_answers WHERE command_id = ANY($1::uuid[]) AND NOT applied",
        [behind, stale],
    )
    assert recorded == 2  # kept for audit, not applied
