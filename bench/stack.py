"""The system under test: a fresh database and AMQP prefix, gateways and consumers as processes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from rich.console import Console

from bench.procs import ROOT, Proc, cpu_seconds, free_port, machine_busy, pids_named
from common.broker import connect_failover
from common.topology import Names, declare_telemetry, delete_all
from db.migrate import migrate

BENCH_KEY = "bench-device-secret"


@dataclass
class Options:
    """The command line of `python -m bench`."""

    duration_s: float
    warmup_s: float
    gateways: int
    consumers: int
    loaders: int
    scenarios: list[str]
    amqp_url: str
    database_url: str
    json_path: str | None
    profile_dir: str | None = None
    service_env: dict[str, str] = field(default_factory=dict)
    rabbit_cluster: bool = False  # run against a throwaway three-node cluster (docs/SCALING.md)
    broker_pids: tuple[int, ...] = ()  # the broker VMs to meter (default: every beam.smp)


@dataclass
class Stack:
    """Everything one bench run starts, and the helpers scenarios measure it with."""

    options: Options
    console: Console
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    gateways: list[Proc] = field(default_factory=list)
    consumers: list[Proc] = field(default_factory=list)
    retired: list[Proc] = field(default_factory=list)
    db: asyncpg.Connection | None = None

    @property
    def prefix(self) -> str:
        return f"bench-{self.run_id}."

    @property
    def dsn(self) -> str:
        parts = urlsplit(self.options.database_url)
        return urlunsplit(parts._replace(path=f"/megapack_bench_{self.run_id}"))

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of the services under test."""
        return {
            "AMQP_URL": self.options.amqp_url,
            "DATABASE_URL": self.dsn,
            "AMQP_PREFIX": self.prefix,
            "DEVICE_API_KEYS": f"bench:{BENCH_KEY}",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            "INGESTION_METRICS_PORT": "0",
            **self.options.service_env,
            **extra,
        }

    def say(self, message: str) -> None:
        """A progress line."""
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")

    async def start(self) -> None:
        """Migrate a fresh database, start consumers and gateways, wait until ready."""
        self.say(f"database {self.dsn.rsplit('/', 1)[-1]}, prefix {self.prefix}")
        await migrate(self.dsn)
        self.db = await asyncpg.connect(self.dsn)
        # The gateway only declares its exchange: the queues exist before it publishes
        # (compose declares them from definitions; here, as under `make run`, we do).
        connection = await connect_failover(self.options.amqp_url)  # one node or a cluster
        async with connection:
            await declare_telemetry(await connection.channel(), Names(self.prefix))
        for index in range(self.options.gateways):
            port = free_port()
            gateway = Proc(
                f"gateway{index}", "api_gateway", self.env(), ("--port", str(port)), port
            )
            self.gateways.append(gateway.start())
        await self.start_consumers()
        for gateway in self.gateways:
            await gateway.wait_ready(120)  # a busy machine imports slowly
        self.say(f"{len(self.gateways)} gateway(s), {len(self.consumers)} consumer(s) ready")

    async def start_consumers(self) -> None:
        """Start the ingestion consumers (they connect in the background)."""
        generation = "" if not self.retired else f"-restart{len(self.retired)}"
        for index in range(self.options.consumers):
            consumer = Proc(f"consumer{index}{generation}", "ingestion_service", self.env())
            self.consumers.append(consumer.start())
        await asyncio.sleep(1.0)
        for consumer in self.consumers:
            consumer.assert_running()

    async def stop_consumers(self) -> list[Proc]:
        """Stop the consumers (they store what they hold first); returns them for the record."""
        stopped, self.consumers = self.consumers, []
        for consumer in stopped:
            await consumer.stop()
        self.retired.extend(stopped)
        return stopped

    async def close(self) -> None:
        """Stop everything, drop the database, delete the broker objects."""
        for proc in [*self.gateways, *self.consumers]:
            await proc.stop()
        if self.db is not None:
            await self.db.close()
        admin = await asyncpg.connect(urlunsplit(urlsplit(self.dsn)._replace(path="/postgres")))
        try:
            name = self.dsn.rsplit("/", 1)[-1]
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        connection = await connect_failover(self.options.amqp_url)  # one node or a cluster
        async with connection:
            await delete_all(
                await connection.channel(),
                Names(self.prefix),
                # the simulator scenario's unit agent declares its own command queue
                extra_queues=(f"{self.prefix}bench.raw", Names(self.prefix).agent_queue("sim")),
            )
        self.say("database dropped, broker objects deleted")

    def sample_peaks(self) -> None:
        """Record peak RSS of every running service process."""
        for proc in [*self.gateways, *self.consumers]:
            proc.sample_peak()

    async def child(self, module: str, *args: str) -> dict[str, Any]:
        """Run `python -m module args` to completion; its last stdout line is JSON."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{module} {args[:1]} exited {process.returncode}")
        result: dict[str, Any] = orjson.loads(out.strip().splitlines()[-1])
        return result

    async def scalar(self, query: str, *args: Any) -> Any:
        """One value from the bench database."""
        assert self.db is not None
        return await self.db.fetchval(query, *args)

    async def wait_rows(self, tag: str, expected: int, timeout_s: float = 120.0) -> int:
        """Wait until the rows of `tag` reach `expected`; returns the final count."""
        deadline = time.monotonic() + timeout_s
        while True:
            count = int(await self.scalar(COUNT_TAG, tag + "-%"))
            if count >= expected or time.monotonic() > deadline:
                return count
            await asyncio.sleep(0.5)


COUNT_TAG = "SELECT count(*) FROM megapack_telemetry WHERE unit_id LIKE $1"


class CpuMeter:
    """CPU seconds per wall second of the services, their PostgreSQL backends, RabbitMQ, the box.

    `postgres` counts only the backends connected to the bench database (other users of the
    server are not ours); `rabbitmq` is the whole broker, shared with anyone else using it: the
    throwaway cluster's three nodes, or else every Erlang VM on the machine.
    """

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._before = {
            name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in groups.items()
        }
        self._machine = machine_busy()
        self._started = time.monotonic()

    @classmethod
    async def start(cls, stack: Stack, extra: dict[str, list[int]] | None = None) -> CpuMeter:
        """Begin measuring the stack's processes (and `extra` named groups of pids)."""
        assert stack.db is not None
        backends = await stack.db.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return cls(
            {
                "gateways": [p.pid for p in stack.gateways],
                "consumers": [p.pid for p in stack.consumers],
                "postgres": [row["pid"] for row in backends],
                "rabbitmq": list(stack.options.broker_pids) or pids_named("beam.smp"),
                **(extra or {}),
            }
        )

    def read(self) -> dict[str, float]:
        """Cores used by each group since the start; `machine` is the whole box."""
        wall = time.monotonic() - self._started
        cores = {}
        for name, before in self._before.items():
            used = 0.0
            for pid, start_s in before.items():
                now_s = cpu_seconds(pid)
                used += max(0.0, now_s - start_s) if now_s else 0.0  # a gone pid counts nothing
            cores[name] = round(used / wall, 2)
        busy, total = machine_busy()
        share = (busy - self._machine[0]) / max(1, total - self._machine[1])
        cores["machine"] = round(share * (os.cpu_count() or 1), 2)
        return cores
