"""Scheduled commands live in the database: released at their time, also by a restarted
service; a newer command supersedes older unsent ones, which never reach the unit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from db.migrate import migrate
from proto.megapack.v1 import commands_pb2 as pb
from tests.conftest import BASE_DATABASE_URL, RUN_ID
from tests.integration.test_control_api import JSON, add_unit, control_service
from tests.integration.test_control_delivery import SOC_LIMITS, ScriptedAgent, wait_status
from tests.support.databases import drop_database
from tests.support.stack import OPERATOR_SECRET

FINAL = {"completed", "rejected", "failed", "expired", "superseded"}


@pytest.fixture
async def lone_database() -> AsyncIterator[str]:
    """A database of its own: only this test's control service releases its schedule."""
    name = f"megapack_test_{RUN_ID}_schedule"
    url = f"{BASE_DATABASE_URL}/{name}"
    await migrate(url)
    yield url
    await drop_database(url)


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_the_schedule_survives_a_restart_and_superseded_commands_never_go_out(
    stack_env: dict[str, str], amqp_url: str, amqp_prefix: str, lone_database: str
) -> None:
    prefix = f"{amqp_prefix}schedule."
    service = (
        control_service({**stack_env, "AMQP_PREFIX": prefix, "DATABASE_URL": lone_database})
        .start()
        .wait_ready(60)
    )
    agent = ScriptedAgent(amqp_url, prefix)
    db = await asyncpg.connect(lone_database)
    unit = await add_unit(db)
    await agent.start(unit)
    try:
        async with httpx.AsyncClient(
            base_url=service.url, headers={"X-API-Key": OPERATOR_SECRET, **JSON}, timeout=10
        ) as http:

            async def post(body: dict[str, object]) -> dict[str, object]:
                answer = await http.post(f"/v1/units/{unit}/commands", json=body)
                assert answer.status_code == 202, answer.text
                created: dict[str, object] = answer.json()
                return created

            replaced = await post({**SOC_LIMITS, "not_before": at(3), "ttl_s": 120})
            assert replaced["status"] == "scheduled"
            assert replaced["history"][0]["status"] == "scheduled"  # type: ignore[index]
            newer = await post(
                {"type": "set_soc_limits", "params": {"min_percent": 20, "max_percent": 80},
                 "not_before": at(3.5), "ttl_s": 120}
            )  # fmt: skip
            later = await post(
                {"type": "set_mode", "params": {"mode": "IDLE"}, "not_before": at(6), "ttl_s": 120}
            )
            gone = (await http.get(f"/v1/commands/{replaced['command_id']}")).json()
            assert (gone["status"], gone["superseded_by"]) == ("superseded", newer["command_id"])
            expires = datetime.fromisoformat(str(newer["expires_at"]))
            not_before = datetime.fromisoformat(str(newer["not_before"]))
            assert expires - not_before == timedelta(seconds=120)  # the TTL counts from then
        service.kill()  # the schedule must come from the database, not from memory
        service.start().wait_ready(60)
        first, message = await agent.next(timeout_s=20)
        received_at = time.time()
        second, _ = await agent.next(timeout_s=20)  # barrier: released after `replaced` was due
        received = {first.command_id: first, second.command_id: second}
        assert set(received) == {newer["command_id"], later["command_id"]}
        assert received_at >= not_before.timestamp() - 0.05
        # The superseded one was never handed to the broker (never claimed), nor received.
        never = "SELECT publish_attempts FROM commands WHERE command_id = $1::uuid"
        assert await db.fetchval(never, replaced["command_id"]) == 0
        assert agent.received.empty()
        first = received[str(newer["command_id"])]
        await agent.answer(first, pb.COMMAND_ACK_STATUS_ACKNOWLEDGED)
        await agent.answer(first, pb.COMMAND_ACK_STATUS_COMPLETED)
        async with httpx.AsyncClient(
            base_url=service.url, headers={"X-API-Key": OPERATOR_SECRET}, timeout=10
        ) as http:
            done = await wait_status(http, str(newer["command_id"]), FINAL)
            steps = [step["status"] for step in done["history"]]  # type: ignore[attr-defined]
            assert steps == ["scheduled", "pending", "sent", "acknowledged", "completed"]
            still = (await http.get(f"/v1/commands/{replaced['command_id']}")).json()
            assert still["status"] == "superseded"
        assert message.routing_key == f"megapack.{unit}"
    finally:
        service.stop()
        await agent.close()
        await db.close()
