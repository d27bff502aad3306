"""The loop when things go wrong: the agent down, a command delivered twice, a control restart."""

from __future__ import annotations

from datetime import datetime

import aio_pika
import asyncpg
import httpx
import pytest

from common.topology import Names, declare_exchange
from tests.e2e.test_control_loop import (
    Stack,
    agent_listening,
    eventually,
    final,
    ops,
    readings_since,
    send,
    stack,
    unit_state,
)

pytestmark = pytest.mark.slow  # `make test-fast` leaves these out

__all__ = ["ops", "stack"]  # the module's own stack and client
SOC_LIMITS = {"type": "set_soc_limits", "params": {"min_percent": 5, "max_percent": 95}}


def mode(name: str, ttl_s: int = 30) -> dict[str, object]:
    return {"type": "set_mode", "params": {"mode": name}, "ttl_s": ttl_s}


async def answers(db: asyncpg.Connection, command_id: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT status, applied FROM command_answers WHERE command_id = $1::uuid ORDER BY id",
            command_id,
        )
    )


async def test_a_command_for_a_stopped_agent_expires_and_is_never_executed(
    stack: Stack, ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await eventually(lambda: unit_state(db, "MP-0003", stack), lambda seen: seen is not None)
    stack.simulator.kill()  # the agent crashes; its queue keeps the bindings
    command = await send(ops, "MP-0003", mode("MAINTENANCE", ttl_s=1))
    done = await final(ops, command["command_id"])
    assert done["status"] == "expired", done
    back = datetime.now().astimezone()
    stack.simulator.start()
    await agent_listening(stack)
    marker = await send(ops, "MP-0003", SOC_LIMITS)  # queued behind the expired command
    assert (await final(ops, marker["command_id"]))["status"] == "completed"
    late = await answers(db, command["command_id"])
    assert all(row["status"] == "rejected" and not row["applied"] for row in late), late
    rows = await eventually(
        lambda: readings_since(db, "MP-0003", back), lambda rows: len(rows) >= 3
    )
    assert all(row["state"] != "MAINTENANCE" for row in rows)
    assert (await ops.get(f"/v1/commands/{command['command_id']}")).json()["status"] == "expired"


async def test_a_command_delivered_twice_is_executed_once(
    stack: Stack, ops: httpx.AsyncClient, db: asyncpg.Connection, amqp_url: str
) -> None:
    await eventually(lambda: unit_state(db, "MP-0001", stack), lambda seen: seen is not None)
    names = Names(stack.env["AMQP_PREFIX"])
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        commands = await declare_exchange(channel, names.commands)
        tap = await channel.declare_queue(exclusive=True)  # sees what the unit is sent
        await tap.bind(commands, routing_key="megapack.MP-0001")
        standby = await send(ops, "MP-0001", mode("STANDBY", ttl_s=120))
        assert (await final(ops, standby["command_id"]))["status"] == "completed"
        idle = await send(ops, "MP-0001", mode("IDLE"))
        assert (await final(ops, idle["command_id"]))["status"] == "completed"
        delivered = await tap.get(timeout=5)
        assert delivered.message_id == standby["command_id"]
        before = len(await answers(db, standby["command_id"]))
        await commands.publish(  # the broker hands the unit the STANDBY command again
            aio_pika.Message(delivered.body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key="megapack.MP-0001",
        )
        await eventually(
            lambda: answers(db, standby["command_id"]), lambda rows: len(rows) > before
        )
    again = datetime.now().astimezone()
    rows = await eventually(
        lambda: readings_since(db, "MP-0001", again), lambda rows: len(rows) >= 3
    )
    assert [row["state"] for row in rows] == ["IDLE"] * len(rows)
    repeated = (await answers(db, standby["command_id"]))[before:]
    assert not any(row["applied"] for row in repeated)


async def test_a_restarted_control_service_ends_commands_in_flight_right(
    stack: Stack, ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await eventually(lambda: unit_state(db, "MP-0001", stack), lambda seen: seen is not None)
    in_flight = [
        await send(ops, "MP-0001", mode("DISCHARGING")),
        await send(ops, "MP-0003", SOC_LIMITS),
        await send(ops, "EV-0001", {"type": "set_charge_limit", "params": {"limit_percent": 80}}),
    ]
    stack.control.kill()  # the unit's answers wait in control.acks
    stack.control.start().wait_ready()
    ended = [await final(ops, command["command_id"]) for command in in_flight]
    assert [command["status"] for command in ended] == ["completed"] * 3, ended
    for command in ended:
        steps = [step["status"] for step in command["history"]]
        assert steps == ["pending", "sent", "acknowledged", "completed"], steps
