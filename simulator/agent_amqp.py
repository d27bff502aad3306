"""The unit agent's broker side: its quorum queue, the per-unit bindings, acks with confirms."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from google.protobuf.message import DecodeError

from common.broker import BrokerUnavailable
from common.topology import Names, declare_agent
from proto.megapack.v1 import commands_pb2

log = structlog.get_logger("simulator.agent")
PREFETCH = 64
OUTBOX_BATCH = 256  # answers published at once by the outbox (each awaits its confirm)


class Publisher(Protocol):
    """Publishes persistently and waits for the broker's confirm (common.broker.Broker)."""

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None: ...


class Decider(Protocol):
    """The agent's logic (simulator.agent.UnitAgent)."""

    def receive(
        self, command: commands_pb2.Command, *, now_ms: int
    ) -> list[commands_pb2.CommandAck]: ...

    def progress(self, *, now_ms: int) -> list[commands_pb2.CommandAck]: ...

    def recover(self, *, now_ms: int) -> list[commands_pb2.CommandAck]: ...


def routing_key(kind: str, unit_id: str) -> str:
    """`<kind>.<unit_id>`, the key of a unit's commands and acks."""
    return f"{kind}.{unit_id}"


class AgentTransport:
    """Consumes the agent queue; publishes each answer and acks the delivery after its confirm."""

    def __init__(
        self,
        *,
        publisher: Publisher,
        decider: Decider,
        names: Names,
        agent_id: str,
        unit_keys: list[tuple[str, str]],
        now_ms: Callable[[], int],
    ) -> None:
        kinds = dict((unit_id, kind) for kind, unit_id in unit_keys)
        self._kind_of: Callable[[str], str] = lambda unit_id: kinds.get(unit_id, "megapack")
        self._publisher, self._decider, self._names = publisher, decider, names
        self._agent_id, self._unit_keys, self._now_ms = agent_id, unit_keys, now_ms
        self._outbox: asyncio.Queue[tuple[str, commands_pb2.CommandAck]] = asyncio.Queue()
        self.consuming = asyncio.Event()

    async def declare(self, channel: AbstractChannel, names: Names) -> None:
        """Declare exchanges, the agent queue and one binding per unit; start consuming."""
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await declare_agent(channel, names, self._agent_id)
        await self._bind_units(channel, queue=queue.name, exchange=names.commands)
        await queue.consume(self.on_message)
        self.consuming.set()
        log.info("agent_consuming", queue=queue.name, units=len(self._unit_keys))

    async def _bind_units(self, channel: AbstractChannel, *, queue: str, exchange: str) -> None:
        """One binding per unit, pipelined: thousands of round trips would take minutes.

        Bindings of a durable queue live on the broker, so a reconnect needs none again.
        """
        underlay = await channel.get_underlay_channel()
        keys = [routing_key(kind, unit_id) for kind, unit_id in self._unit_keys]
        for key in keys[:-1]:
            await underlay.queue_bind(queue, exchange, routing_key=key, nowait=True)
        if keys:  # answered only once the broker has processed every binding before it
            await underlay.queue_bind(queue, exchange, routing_key=keys[-1])

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """Decide, publish every answer with a confirm, then ack (nack to retry on failure)."""
        try:
            command = commands_pb2.Command.FromString(message.body)
        except DecodeError:
            log.error("command_undecodable", size=len(message.body))
            await message.reject(requeue=False)
            return
        acks = self._decider.receive(command, now_ms=self._now_ms())
        try:
            for ack in acks:
                await self._publish(command.kind, ack)
        except BrokerUnavailable as error:
            log.warning(
                "command_ack_not_confirmed", command_id=command.command_id, error=str(error)
            )
            with contextlib.suppress(aio_pika.exceptions.AMQPError, RuntimeError):
                await message.nack(requeue=True)
            return
        await message.ack()
        log.info(
            "command_answered",
            command_id=command.command_id,
            unit_id=command.unit_id,
            type=command.type,
            statuses=[commands_pb2.CommandAckStatus.Name(a.status) for a in acks],
            reason=acks[-1].reason if acks else "",
        )

    async def _publish(self, kind: str, ack: commands_pb2.CommandAck) -> None:
        await self._publisher.publish(
            self._names.command_acks,
            routing_key(kind, ack.unit_id),
            ack.SerializeToString(),
            message_id=f"{ack.command_id}:{ack.status}",
        )

    def after_step(self, *, now_ms: int) -> None:
        """Queue the answers a simulation step produced (completions, failures)."""
        for ack in self._decider.progress(now_ms=now_ms):
            self._outbox.put_nowait((self._kind_of(ack.unit_id), ack))

    def recover(self, *, now_ms: int) -> None:
        """Queue what a restarted agent owes: answers that may not have gone out before."""
        acks = self._decider.recover(now_ms=now_ms)
        for ack in acks:
            self._outbox.put_nowait((self._kind_of(ack.unit_id), ack))
        if acks:
            log.info("agent_recovered", answers=len(acks))

    async def run_outbox(self) -> None:
        """Publish queued answers, retrying until the broker confirms each: the answers of
        different commands in parallel (a group of 1,000 completes at once; one confirm at a
        time would take the broker's confirm latency 1,000 times), each command's in order."""
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < OUTBOX_BATCH:
                batch.append(self._outbox.get_nowait())
            by_command: dict[str, list[tuple[str, commands_pb2.CommandAck]]] = {}
            for kind, ack in batch:
                by_command.setdefault(ack.command_id, []).append((kind, ack))
            await asyncio.gather(*(self._send_in_order(items) for items in by_command.values()))

    async def _send_in_order(self, items: list[tuple[str, commands_pb2.CommandAck]]) -> None:
        for kind, ack in items:
            delay_s = 0.5
            while True:
                try:
                    await self._publish(kind, ack)
                    break
                except BrokerUnavailable as error:
                    log.warning("command_ack_retry", command_id=ack.command_id, error=str(error))
                    await asyncio.sleep(delay_s)
                    delay_s = min(delay_s * 2, 5.0)
            log.info(
                "command_finished",
                command_id=ack.command_id,
                unit_id=ack.unit_id,
                status=commands_pb2.CommandAckStatus.Name(ack.status),
                reason=ack.reason,
            )
