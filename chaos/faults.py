"""Faults injected while the load runs, each timed until the pipeline works end to end again."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
import asyncpg
import structlog

from chaos.load import LoadGenerator, reading
from chaos.stack import Stack
from proto.megapack.v1 import telemetry_pb2 as pb

log = structlog.get_logger("chaos")


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault and how long the pipeline took to carry a fresh reading again."""

    name: str
    at_s: float  # since the load started
    outage_s: float  # how long the fault was held
    recovery_s: float | None  # from clearing the fault to a fresh reading stored; None: never


@dataclass
class Probe:
    """Sends one fresh reading through the gateway and waits until it is in the database."""

    load: LoadGenerator
    conn: asyncpg.Connection
    unit_id: str
    seq: int = 0

    async def landed(self, timeout_s: float = 120.0) -> None:
        """Return once a new reading, answered 202, is stored (it also joins the ledger)."""
        self.seq += 1
        item = reading("megapack", self.unit_id, self.load.base_ms + self.seq, self.seq)
        deadline = time.monotonic() + timeout_s
        while not await self.load.send("megapack", [item]):
            if time.monotonic() > deadline:
                raise TimeoutError("probe reading never accepted")
        while not await self.conn.fetchval(
            "SELECT count(*) FROM megapack_telemetry WHERE unit_id = $1 "
            "AND time = TIMESTAMPTZ 'epoch' + $2 * INTERVAL '1 millisecond'",
            self.unit_id,
            item["timestamp"],
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("probe reading never stored")
            await asyncio.sleep(0.05)


def poison_bodies(run_id: str) -> list[bytes]:
    """Messages no consumer can store: undecodable bytes, and a row the database refuses."""
    undecodable = [b"\xff" * 12 + f"chaos-{run_id}-poison-{i}".encode() for i in range(2)]
    refused = pb.TelemetryBatch(batch_id=f"chaos-{run_id}-nul", received_at_us=1)
    refused.megapack.add(unit_id="NUL\x00IN-ID", site_id="SITE-01", timestamp_ms=1, state=1)
    envelope = pb.TelemetryEnvelope(batches=[refused]).SerializeToString()
    return [*undecodable, envelope]


@dataclass
class Injector:
    """Runs the faults one after another, recording each."""

    stack: Stack
    probe: Probe
    outage_s: float
    started: float = field(default_factory=time.monotonic)
    faults: list[Fault] = field(default_factory=list)
    planted: list[bytes] = field(default_factory=list)

    async def _timed(
        self, name: str, inject: Callable[[], Awaitable[None]], clear: Callable[[], Awaitable[None]]
    ) -> None:
        at = time.monotonic()
        log.info("fault_injected", fault=name)
        await inject()
        cleared = time.monotonic()
        recovery_s: float | None = None
        try:
            await clear()
            await self.probe.landed()
            recovery_s = time.monotonic() - cleared
        except TimeoutError as error:
            log.error("fault_not_recovered", fault=name, error=str(error))
        self.faults.append(Fault(name, at - self.started, cleared - at, recovery_s))

    async def kill_consumer(self, index: int) -> None:
        """SIGKILL a consumer holding unacknowledged deliveries; restart it."""

        async def inject() -> None:
            await asyncio.to_thread(self.stack.kill_consumer, index)

        async def clear() -> None:
            await self.stack.wait_consumers(len(self.stack.consumers))

        await self._timed(f"SIGKILL ingestion consumer {index}", inject, clear)

    async def cut(self, which: str) -> None:
        """Cut the database or the broker off for `outage_s`, then restore it."""
        proxy = self.stack.pg_proxy if which == "PostgreSQL" else self.stack.amqp_proxy

        async def inject() -> None:
            await asyncio.to_thread(proxy.cut)
            await asyncio.sleep(self.outage_s)

        async def clear() -> None:
            await asyncio.to_thread(proxy.restore)

        await self._timed(f"cut {which} for {self.outage_s:g}s", inject, clear)

    async def restart_gateway(self, sig: signal.Signals) -> None:
        """Stop the gateway with `sig` and start a new one on the same port."""

        async def inject() -> None:
            await asyncio.to_thread(self.stack.restart_gateway, sig)

        async def clear() -> None:
            await self.stack.wait_gateway()

        await self._timed(f"restart gateway ({sig.name})", inject, clear)

    async def plant_poison(self) -> None:
        """Publish poison messages straight onto the telemetry exchange (they must dead-letter)."""
        bodies = poison_bodies(self.stack.run_id)
        connection = await aio_pika.connect(self.stack.amqp_url, timeout=10)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self.stack.names.telemetry)
            for body in bodies:
                message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await exchange.publish(message, routing_key="megapack")
        self.planted.extend(bodies)
        at = time.monotonic() - self.started
        self.faults.append(Fault(f"plant {len(bodies)} poison messages", at, 0.0, 0.0))

    async def run(self, plan: list[str], gap_s: float) -> None:
        """Inject the faults named in `plan` in order, `gap_s` apart."""
        actions: dict[str, Callable[[], Awaitable[None]]] = {
            "kill0": lambda: self.kill_consumer(0),
            "kill1": lambda: self.kill_consumer(1),
            "pg": lambda: self.cut("PostgreSQL"),
            "amqp": lambda: self.cut("RabbitMQ"),
            "term": lambda: self.restart_gateway(signal.SIGTERM),
            "kill": lambda: self.restart_gateway(signal.SIGKILL),
            "poison": self.plant_poison,
        }
        for name in plan:
            await asyncio.sleep(gap_s)
            await actions[name]()
