"""The unit agent's outbox: answers of different commands go out together, each command's in
order, and a refused publish is retried until confirmed."""

from __future__ import annotations

import asyncio

from common.broker import BrokerUnavailable
from common.topology import Names
from proto.megapack.v1 import commands_pb2
from simulator.agent_amqp import AgentTransport

DONE = commands_pb2.COMMAND_ACK_STATUS_COMPLETED
LAPSED = commands_pb2.COMMAND_ACK_STATUS_LAPSED


class SlowBroker:
    """Confirms each publish after `confirm_s`; refuses the first `refusals` publishes."""

    def __init__(self, *, confirm_s: float, expected: int, refusals: int = 0) -> None:
        self.confirm_s, self.expected, self.refusals = confirm_s, expected, refusals
        self.all_confirmed = asyncio.Event()
        self.in_flight = self.most_in_flight = 0
        self.confirmed: list[str] = []

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None:
        if self.refusals:
            self.refusals -= 1
            raise BrokerUnavailable("no confirm")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(self.confirm_s)
        self.in_flight -= 1
        self.confirmed.append(str(message_id))
        if len(self.confirmed) == self.expected:
            self.all_confirmed.set()


class NoDecider:
    def __init__(self, acks: list[commands_pb2.CommandAck]) -> None:
        self.acks = acks

    def receive(
        self, command: commands_pb2.Command, *, now_ms: int
    ) -> list[commands_pb2.CommandAck]:
        return []

    def progress(self, *, now_ms: int) -> list[commands_pb2.CommandAck]:
        acks, self.acks = self.acks, []
        return acks

    def recover(self, *, now_ms: int) -> list[commands_pb2.CommandAck]:
        return []


def ack(
    command_id: str, status: commands_pb2.CommandAckStatus.ValueType
) -> commands_pb2.CommandAck:
    return commands_pb2.CommandAck(command_id=command_id, unit_id="MP-1", status=status)


async def drain(broker: SlowBroker, acks: list[commands_pb2.CommandAck]) -> None:
    transport = AgentTransport(
        publisher=broker, decider=NoDecider(acks), names=Names("t."), agent_id="a",
        unit_keys=[("megapack", "MP-1")], now_ms=lambda: 0,
    )  # fmt: skip
    transport.after_step(now_ms=0)
    task = asyncio.create_task(transport.run_outbox())
    try:
        async with asyncio.timeout(30):
            await broker.all_confirmed.wait()
    finally:
        task.cancel()


async def test_answers_of_different_commands_are_published_together() -> None:
    broker = SlowBroker(confirm_s=0.05, expected=200)
    await drain(broker, [ack(f"c{n}", DONE) for n in range(200)])
    assert sorted(broker.confirmed) == sorted(f"c{n}:{DONE}" for n in range(200))
    assert broker.most_in_flight == 200  # not one confirm at a time


async def test_one_commands_answers_keep_their_order_through_retries() -> None:
    broker = SlowBroker(confirm_s=0.01, expected=3, refusals=1)
    await drain(broker, [ack("c1", DONE), ack("c2", DONE), ack("c1", LAPSED)])
    one = [m for m in broker.confirmed if m.startswith("c1:")]
    assert one == [f"c1:{DONE}", f"c1:{LAPSED}"]
    assert len(broker.confirmed) == 3
