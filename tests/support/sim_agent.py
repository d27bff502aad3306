"""Talk to a running simulator's unit agent as the control service would: commands out, acks in."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from common.topology import Names, declare_exchange, quorum_arguments
from proto.megapack.v1 import commands_pb2


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def command(
    unit_id: str, type_: str, params: dict[str, Any] | None = None, *, ttl_s: float = 30.0
) -> commands_pb2.Command:
    """A command as the control service builds it (expiry `ttl_s` from now; negative = past)."""
    issued = now_ms()
    return commands_pb2.Command(
        command_id=str(uuid.uuid4()),
        unit_id=unit_id,
        kind="ev" if "EV-" in unit_id else "megapack",
        type=type_,
        params_json=json.dumps(params or {}),
        issued_at_ms=issued,
        expires_at_ms=issued + int(ttl_s * 1000),
        requested_by="ops",
    )


class Operator:
    """Publishes commands on `commands` and collects every ack from `command_acks`."""

    def __init__(self, channel: AbstractChannel, names: Names) -> None:
        self.channel, self.names = channel, names
        self.acks: dict[str, list[commands_pb2.CommandAck]] = defaultdict(list)
        self._arrived = asyncio.Condition()

    async def start(self) -> Operator:
        """Declare the exchanges and an ack queue of the test's own."""
        self.commands = await declare_exchange(self.channel, self.names.commands)
        acks = await declare_exchange(self.channel, self.names.command_acks)
        queue = await self.channel.declare_queue(
            f"{self.names.prefix}test.acks", durable=True, arguments=quorum_arguments()
        )
        await queue.bind(acks, routing_key="#")
        await queue.consume(self._on_ack)
        return self

    async def _on_ack(self, message: AbstractIncomingMessage) -> None:
        ack = commands_pb2.CommandAck.FromString(message.body)
        async with self._arrived:
            self.acks[ack.command_id].append(ack)
            self._arrived.notify_all()
        await message.ack()

    async def send(self, sent: commands_pb2.Command, *, to_queue: str | None = None) -> None:
        """Publish persistently with the expiry as AMQP expiration (or straight to a queue)."""
        ttl_s = max(0.001, (sent.expires_at_ms - now_ms()) / 1000)
        message = aio_pika.Message(
            sent.SerializeToString(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            expiration=ttl_s if sent.expires_at_ms > now_ms() else None,
        )
        if to_queue is not None:
            await self.channel.default_exchange.publish(message, routing_key=to_queue)
        else:
            await self.commands.publish(message, routing_key=f"{sent.kind}.{sent.unit_id}")

    async def wait(
        self, command_id: str, status: str, *, count: int = 1, timeout_s: float = 15
    ) -> list[commands_pb2.CommandAck]:
        """The acks of a command once `count` of them have `status` (e.g. "COMPLETED")."""
        wanted = commands_pb2.CommandAckStatus.Value(f"COMMAND_ACK_STATUS_{status}")

        def enough() -> bool:
            return sum(a.status == wanted for a in self.acks[command_id]) >= count

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(enough), timeout_s)
        return list(self.acks[command_id])


def names_of(acks: list[commands_pb2.CommandAck]) -> list[str]:
    """Status names without the enum prefix."""
    prefix = "COMMAND_ACK_STATUS_"
    return [commands_pb2.CommandAckStatus.Name(a.status).removeprefix(prefix) for a in acks]
