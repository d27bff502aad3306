"""A control service killed with commands in flight ends each of them right after its restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from db.migrate import migrate
from proto.megapack.v1 import commands_pb2 as pb
from tests.conftest import BASE_DATABASE_URL, RUN_ID
from tests.integration.test_control_api import JSON, add_unit, control_service
from tests.integration.test_control_delivery import (
    FINAL,
    SOC_LIMITS,
    ScriptedAgent,
    send,
    wait_status,
)
from tests.support.databases import drop_database
from tests.support.stack import OPERATOR_SECRET


@pytest.fixture
async def lone_database() -> AsyncIterator[str]:
    """A database of its own: no other control service's sweeper may touch its commands."""
    name = f"megapack_test_{RUN_ID}_control_restart"
    url = f"{BASE_DATABASE_URL}/{name}"
    await migrate(url)
    yield url
    await drop_database(url)


async def test_a_restarted_service_ends_commands_in_flight_right(
    stack_env: dict[str, str], amqp_url: str, amqp_prefix: str, lone_database: str
) -> None:
    prefix = f"{amqp_prefix}restart."  # its own exchanges: no other control service consumes
    env = {**stack_env, "AMQP_PREFIX": prefix, "DATABASE_URL": lone_database}
    service = control_service(env).start().wait_ready()
    agent = ScriptedAgent(amqp_url, prefix)
    db = await asyncpg.connect(lone_database)
    unit = await add_unit(db)
    await db.close()
    await agent.start(unit)
    try:
        async with httpx.AsyncClient(
            base_url=service.url, headers={"X-API-Key": OPERATOR_SECRET, **JSON}, timeout=10
        ) as http:
            answered = [await send(http, unit, ttl_s=30) for _ in range(3)]
            short = await http.post(f"/v1/units/{unit}/commands", json={**SOC_LIMITS, "ttl_s": 1})
            unanswered = await send(http, unit, ttl_s=2)
            commands = [(await agent.next())[0] for _ in range(5)]
        answered.append(short.json()["command_id"])  # acknowledged in time, applied late
        service.kill()  # SIGKILL: nothing finishes
        for command in commands:
            if command.command_id in answered:
                await agent.answer(command, pb.COMMAND_ACK_STATUS_ACKNOWLEDGED)
                await agent.answer(command, pb.COMMAND_ACK_STATUS_COMPLETED)
        expires_at = datetime.fromisoformat(short.json()["expires_at"])
        await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds() + 1))
        service.start().wait_ready()
        async with httpx.AsyncClient(
            base_url=service.url, headers={"X-API-Key": OPERATOR_SECRET}, timeout=10
        ) as http:
            ended = [await wait_status(http, command_id, FINAL) for command_id in answered]
            expired = await wait_status(http, unanswered, FINAL)
        assert [command["status"] for command in ended] == ["completed"] * 4
        assert expired["status"] == "expired"
    finally:
        service.stop()
        await agent.close()
