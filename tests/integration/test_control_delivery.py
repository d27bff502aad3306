"""Commands through the real RabbitMQ to a scripted unit agent, and its answers back."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import aio_pika
import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from common.topology import Names, declare_agent
from proto.megapack.v1 import commands_pb2 as pb
from tests.integration.test_control_api import JSON, add_unit, control_service
from tests.support.stack import OPERATOR_SECRET, Service

FINAL = {"completed", "rejected", "failed", "expired"}


class ScriptedAgent:
    """A unit agent on the real broker whose answers the test chooses."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.names = url, Names(prefix)
        self.agent_id = f"test-agent-{uuid.uuid4().hex[:8]}"
        self.received: asyncio.Queue[tuple[pb.Command, AbstractIncomingMessage]] = asyncio.Queue()
        self.queue: AbstractQueue | None = None

    async def start(self, *units: str, consume: bool = True) -> ScriptedAgent:
        self.connection = await aio_pika.connect(self.url)
        channel = await self.connection.channel(publisher_confirms=True)
        self.queue = await declare_agent(channel, self.names, self.agent_id)
        self.acks = await channel.get_exchange(self.names.command_acks)
        for unit in units:
            await self.queue.bind(self.names.commands, routing_key=f"megapack.{unit}")
        if consume:
            await self.queue.consume(self._on_command)
        return self

    async def _on_command(self, message: AbstractIncomingMessage) -> None:
        await message.ack()
        await self.received.put((pb.Command.FromString(message.body), message))

    async def next(self, timeout_s: float = 10) -> tuple[pb.Command, AbstractIncomingMessage]:
        return await asyncio.wait_for(self.received.get(), timeout_s)

    async def answer(
        self, command: pb.Command, status: int, reason: str = "", at_ms: int | None = None
    ) -> None:
        ack = pb.CommandAck(
            command_id=command.command_id,
            unit_id=command.unit_id,
            status=status,  # type: ignore[arg-type]
            reason=reason,
            at_ms=at_ms or time.time_ns() // 1_000_000,
            agent_id=self.agent_id,
        )
        await self.acks.publish(
            aio_pika.Message(
                ack.SerializeToString(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            ),
            routing_key=f"{command.kind}.{command.unit_id}",
        )

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.delete(if_unused=False, if_empty=False)
        await self.connection.close()


@pytest.fixture(scope="module")
def control(stack_env: dict[str, str]) -> Iterator[Service]:
    service = control_service(stack_env).start().wait_ready()
    yield service
    service.stop()


@pytest.fixture
async def ops(control: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=control.url, headers={"X-API-Key": OPERATOR_SECRET, **JSON}, timeout=10
    ) as http:
        yield http


@pytest.fixture
async def agent(amqp_url: str, amqp_prefix: str) -> AsyncIterator[ScriptedAgent]:
    scripted = ScriptedAgent(amqp_url, amqp_prefix)
    yield scripted
    await scripted.close()


async def wait_status(
    http: httpx.AsyncClient, command_id: str, statuses: set[str], timeout_s: float = 15
) -> dict[str, object]:
    """Poll the API until the command is in one of `statuses`; returns it."""
    deadline = time.monotonic() + timeout_s
    while True:
        command: dict[str, object] = (await http.get(f"/v1/commands/{command_id}")).json()
        if command["status"] in statuses or time.monotonic() > deadline:
            return command
        await asyncio.sleep(0.05)


# A command whose completion the unit reports (set_power / set_mode wait for telemetry).
SOC_LIMITS = {"type": "set_soc_limits", "params": {"min_percent": 10, "max_percent": 90}}


async def send(http: httpx.AsyncClient, unit: str, ttl_s: int = 10) -> str:
    answer = await http.post(f"/v1/units/{unit}/commands", json={**SOC_LIMITS, "ttl_s": ttl_s})
    assert answer.status_code == 202, answer.text
    command_id: str = answer.json()["command_id"]
    return command_id


async def test_a_command_reaches_its_unit_with_its_expiry_and_completes(
    ops: httpx.AsyncClient, agent: ScriptedAgent, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    await agent.start(unit)
    command_id = await send(ops, unit, ttl_s=10)
    command, message = await agent.next()
    assert command.command_id == command_id
    assert (command.unit_id, command.kind, command.type) == (unit, "megapack", "set_soc_limits")
    assert json.loads(command.params_json) == {"min_percent": 10, "max_percent": 90}
    assert command.seq > 0
    assert command.expires_at_ms - command.issued_at_ms == 10_000
    assert command.requested_by == "ops"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.message_id == command_id
    assert message.routing_key == f"megapack.{unit}"
    assert isinstance(message.expiration, float)
    assert 0 < message.expiration <= 10
    await agent.answer(command, pb.COMMAND_ACK_STATUS_ACKNOWLEDGED)
    await agent.answer(command, pb.COMMAND_ACK_STATUS_COMPLETED)
    done = await wait_status(ops, command_id, FINAL)
    assert done["status"] == "completed"
    assert done["agent_id"] == agent.agent_id
    steps = [step["status"] for step in done["history"]]  # type: ignore[attr-defined]
    assert steps == ["pending", "sent", "acknowledged", "completed"]


async def test_a_refusal_keeps_the_units_reason(
    ops: httpx.AsyncClient, agent: ScriptedAgent, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    await agent.start(unit)
    command_id = await send(ops, unit)
    command, _ = await agent.next()
    await agent.answer(command, pb.COMMAND_ACK_STATUS_REJECTED, "SOC below min_percent")
    done = await wait_status(ops, command_id, FINAL)
    assert (done["status"], done["reason"]) == ("rejected", "SOC below min_percent")
    assert done["acknowledged_at"] is None


async def test_late_and_duplicate_answers_never_move_a_command_back(
    ops: httpx.AsyncClient, agent: ScriptedAgent, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    await agent.start(unit)
    command_id = await send(ops, unit)
    command, _ = await agent.next()
    for status in (
        pb.COMMAND_ACK_STATUS_ACKNOWLEDGED,
        pb.COMMAND_ACK_STATUS_COMPLETED,
        pb.COMMAND_ACK_STATUS_ACKNOWLEDGED,
        pb.COMMAND_ACK_STATUS_FAILED,
    ):
        await agent.answer(command, status)
    deadline = time.monotonic() + 10
    query = "SELECT applied FROM command_answers WHERE command_id = $1::uuid ORDER BY id"
    while len(applied := [r["applied"] for r in await db.fetch(query, command_id)]) < 4:
        assert time.monotonic() < deadline, applied
        await asyncio.sleep(0.05)
    assert applied == [True, True, False, False]
    final = (await ops.get(f"/v1/commands/{command_id}")).json()
    assert (final["status"], final["failed_at"]) == ("completed", None)


async def test_a_command_nobody_takes_expires_and_the_broker_drops_it(
    ops: httpx.AsyncClient, agent: ScriptedAgent, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    await agent.start(unit, consume=False)  # the agent is down; its queue holds the command
    command_id = await send(ops, unit, ttl_s=1)
    done = await wait_status(ops, command_id, FINAL)
    assert done["status"] == "expired"
    assert done["reason"] == "no acknowledgement from the unit before expiry"
    assert agent.queue is not None
    assert await agent.queue.get(fail=False, timeout=5) is None  # the agent comes back: nothing


async def test_an_answer_held_up_past_expiry_corrects_it_only_if_stamped_in_time(
    ops: httpx.AsyncClient, agent: ScriptedAgent, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    await agent.start(unit)
    in_time, too_late = await send(ops, unit, ttl_s=1), await send(ops, unit, ttl_s=1)
    received = {
        command.command_id: command for command, _ in [await agent.next(), await agent.next()]
    }
    for command_id in (in_time, too_late):
        assert (await wait_status(ops, command_id, FINAL))["status"] == "expired"
    acted = received[in_time]  # the unit acted at once; its answers were held up (an outage)
    await agent.answer(acted, pb.COMMAND_ACK_STATUS_ACKNOWLEDGED, at_ms=acted.issued_at_ms + 10)
    await agent.answer(acted, pb.COMMAND_ACK_STATUS_COMPLETED, at_ms=acted.issued_at_ms + 20)
    late = received[too_late]
    await agent.answer(late, pb.COMMAND_ACK_STATUS_ACKNOWLEDGED, at_ms=late.expires_at_ms + 1)
    corrected = await wait_status(ops, in_time, {"completed"})
    assert (corrected["status"], corrected["expired_at"], corrected["reason"]) == (
        "completed",
        None,
        None,
    )
    query = "SELECT count(*) FROM command_answers WHERE command_id = $1::uuid"
    deadline = time.monotonic() + 10
    while await db.fetchval(query, too_late) < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert (await ops.get(f"/v1/commands/{too_late}")).json()["status"] == "expired"


async def test_a_pending_command_left_by_a_crash_is_published_again(
    ops: httpx.AsyncClient, agent: ScriptedAgent, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    await agent.start(unit)
    command_id = uuid.uuid4()
    await db.execute(  # as if the service died between storing the row and publishing it
        """INSERT INTO commands (command_id, unit_id, kind, type, params, ttl_s, requested_by,
               request_digest, created_at, expires_at, last_publish_at, publish_attempts)
           VALUES ($1, $2, 'megapack', 'set_soc_limits',
               '{"min_percent": 10, "max_percent": 90}', 30, 'ops', 'x',
               now() - INTERVAL '5 seconds', now() + INTERVAL '25 seconds',
               now() - INTERVAL '5 seconds', 1)""",
        command_id,
        unit,
    )
    command, _ = await agent.next()
    assert command.command_id == str(command_id)
    await agent.answer(command, pb.COMMAND_ACK_STATUS_COMPLETED)
    done = await wait_status(ops, str(command_id), FINAL)
    assert done["status"] == "completed"
    assert (
        await db.fetchval("SELECT publish_attempts FROM commands WHERE command_id = $1", command_id)
        == 2
    )
