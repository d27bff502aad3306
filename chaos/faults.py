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

from chaos.commands import CommandFlow
from chaos.load import LoadGenerator, reading
from chaos.stack import AGENT_ID, CONSUMERS, Stack
from common.broker import connect_failover
from proto.megapack.v1 import telemetry_pb2 as pb

log = structlog.get_logger("chaos")
Step = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault and how long the pipeline took to work again."""

    name: str
    at_s: float  # since the load started
    outage_s: float  # how long the fault was held
    recovery_s: float | None  # from clearing the fault to a fresh probe through; None: never


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

    async def command_done(self, flow: CommandFlow, timeout_s: float = 60.0) -> None:
        """Return once a fresh command has been completed by the unit (it joins the flow)."""
        body = {"type": "set_soc_limits", "params": {"min_percent": 5, "max_percent": 95}}
        command_id = await flow.send("MP-0001", {**body, "ttl_s": 30}, give_up_s=timeout_s)
        if command_id is None:
            raise TimeoutError("probe command never accepted")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            response = await flow.client.get(f"/v1/commands/{command_id}")
            if response.status_code == 200 and response.json()["status"] == "completed":
                return
            await asyncio.sleep(0.1)
        raise TimeoutError("probe command never completed")


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
    flow: CommandFlow | None = None
    started: float = field(default_factory=time.monotonic)
    faults: list[Fault] = field(default_factory=list)
    planted: list[bytes] = field(default_factory=list)

    async def _timed(self, name: str, inject: Step, clear: Step, *, commands: bool = False) -> None:
        at = time.monotonic()
        log.info("fault_injected", fault=name)
        await inject()
        cleared = time.monotonic()
        recovery_s: float | None = None
        try:
            await clear()
            if commands and self.flow is not None:
                await self.probe.command_done(self.flow)
            else:
                await self.probe.landed()
            recovery_s = time.monotonic() - cleared
        except TimeoutError as error:
            log.error("fault_not_recovered", fault=name, error=str(error))
        self.faults.append(Fault(name, at - self.started, cleared - at, recovery_s))

    async def kill_consumer(self, index: int) -> None:
        """SIGKILL a consumer holding unacknowledged deliveries; restart it."""

        async def inject() -> None:
            await self.stack.restart(CONSUMERS[index], signal.SIGKILL)

        async def clear() -> None:
            await self.stack.wait_consumers(self.stack.names.ingest_queue, len(CONSUMERS))

        await self._timed(f"SIGKILL ingestion consumer {index}", inject, clear)

    async def cut(self, which: str) -> None:
        """Cut the database or the broker off for `outage_s`, then restore it."""
        proxy = self.stack.pg_proxy if which == "PostgreSQL" else self.stack.amqp_proxy
        assert proxy is not None, "the broker is cut through its proxy (not used on a cluster)"

        async def inject() -> None:
            await asyncio.to_thread(proxy.cut)
            await asyncio.sleep(self.outage_s)

        async def clear() -> None:
            await asyncio.to_thread(proxy.restore)

        await self._timed(f"cut {which} for {self.outage_s:g}s", inject, clear)

    async def restart_http(self, role: str, sig: signal.Signals) -> None:
        """Stop the gateway or the control service with `sig`; start a new one, same port."""

        async def inject() -> None:
            await self.stack.restart(role, sig)

        async def clear() -> None:
            await self.stack.wait_ready(role)

        await self._timed(f"restart {role} ({sig.name})", inject, clear, commands=role == "control")

    async def kill_agent(self) -> None:
        """SIGKILL the simulator and its unit agent while commands flow; restart it."""

        async def inject() -> None:
            await self.stack.restart("agent", signal.SIGKILL)

        async def clear() -> None:
            await self.stack.wait_consumers(self.stack.names.agent_queue(AGENT_ID), 1)

        await self._timed("SIGKILL unit agent (simulator)", inject, clear, commands=True)

    async def plant_poison(self) -> None:
        """Publish poison messages straight onto the telemetry exchange (they must dead-letter)."""
        bodies = poison_bodies(self.stack.run_id)
        connection = await connect_failover(self.stack.amqp_url, timeout_s=10)
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
        actions: dict[str, Step] = {
            "kill0": lambda: self.kill_consumer(0),
            "kill1": lambda: self.kill_consumer(1),
            "pg": lambda: self.cut("PostgreSQL"),
            "amqp": lambda: self.cut("RabbitMQ"),
            "term": lambda: self.restart_http("gateway", signal.SIGTERM),
            "kill": lambda: self.restart_http("gateway", signal.SIGKILL),
            "ctl_term": lambda: self.restart_http("control", signal.SIGTERM),
            "ctl_kill": lambda: self.restart_http("control", signal.SIGKILL),
            "agent": self.kill_agent,
            "poison": self.plant_poison,
        }
        for name in plan:
            if name in ("ctl_term", "ctl_kill", "agent") and self.flow is None:
                continue
            await asyncio.sleep(gap_s)
            await actions[name]()
