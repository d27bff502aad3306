"""The stack under test: a fresh database and prefix, TCP proxies, and the service processes."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import structlog

from common.broker import connect_failover
from common.topology import Names, delete_all
from db.migrate import migrate
from tests.support.proxy import TcpProxy
from tests.support.stack import DEVICE_SECRET, Service, free_port, service_env

log = structlog.get_logger("chaos")

POSTGRES_URL = os.environ.get("CHAOS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("CHAOS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
CONSUMERS = ("consumer0", "consumer1")
AGENT_ID = "chaos"


def _proxy_for(url: str, default_port: int) -> TcpProxy:
    parts = urlsplit(url)
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port).start()


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{credentials}127.0.0.1:{port}").geturl()


@dataclass
class Stack:
    """Everything one chaos run owns; `close()` removes all of it."""

    with_commands: bool = False
    # A cluster's nodes (comma-separated), reached directly; None: CHAOS_AMQP_URL via a proxy.
    broker_urls: str | None = None
    ready_timeout_s: float = 30.0  # how long a service may take to start (a barrier, not a pace)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    roles: dict[str, Service] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    extra_queues: list[str] = field(default_factory=list)
    _expected_exits: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.database = f"megapack_chaos_{self.run_id}"
        self.database_url = f"{POSTGRES_URL}/{self.database}"
        self.amqp_url = self.broker_urls or AMQP_URL
        self.names = Names(f"chaos-{self.run_id}.")
        self.pg_proxy = _proxy_for(POSTGRES_URL, 5432)
        self.amqp_proxy = None if self.broker_urls else _proxy_for(AMQP_URL, 5672)
        self.ports = {"gateway": free_port(), "control": free_port()}
        self.extra_queues.append(self.names.agent_queue(AGENT_ID))
        # one journal for every incarnation of the agent: a restart must not run a command again
        self.agent_journal = Path(tempfile.gettempdir()) / f"chaos-{self.run_id}-agent.journal"

    def env(self, *, first_node: int = 0, **extra: str) -> dict[str, str]:
        """The environment of a service: database (and one broker) reached through the proxies.

        On a cluster each service lists every node, starting at `first_node` (round the list),
        so that connections spread over the nodes as a deployment would spread them.
        """
        if self.amqp_proxy is not None:
            amqp_url = _through(self.amqp_url, self.amqp_proxy.port)
        else:
            urls = self.amqp_url.split(",")
            start = first_node % len(urls)
            amqp_url = ",".join(urls[start:] + urls[:start])
        return service_env(
            database_url=_through(self.database_url, self.pg_proxy.port),
            amqp_url=amqp_url,
            prefix=self.names.prefix,
            **extra,
        )

    def url(self, role: str) -> str:
        """Where an HTTP role listens."""
        return f"http://127.0.0.1:{self.ports[role]}"

    def _service(self, role: str) -> Service:
        if role == "gateway":
            env = self.env(first_node=0, GATEWAY_PORT=str(self.ports[role]))
            return Service("api_gateway", env, port=self.ports[role])
        if role == "control":
            env = self.env(
                first_node=1,
                CONTROL_PORT=str(self.ports[role]),
                COMMAND_SWEEP_INTERVAL_S="0.2",
                COMMAND_EXPIRY_GRACE_S="0.5",
                COMMAND_REPUBLISH_AFTER_S="1",
                # above the unit agent's own 30 s effect timeout, so the unit decides first
                COMMAND_COMPLETION_TIMEOUT_S="40",
            )
            return Service("control_service", env, port=self.ports[role])
        if role == "agent":
            env = self.env(
                first_node=2,
                MEGAPACK_COUNT="4", EV_COUNT="4", SITE_COUNT="1", FAULT_RATE="0", SIM_SEED="7",
                TELEMETRY_INTERVAL_S="1", GATEWAY_URL=self.url("gateway"),
                DEVICE_API_KEY=DEVICE_SECRET, SIM_AGENT_ID=AGENT_ID,
                SIM_AGENT_JOURNAL=str(self.agent_journal),
            )  # fmt: skip
            return Service("simulator", env)
        first_node = CONSUMERS.index(role) + 1 if role in CONSUMERS else 0
        return Service("ingestion_service", self.env(first_node=first_node))

    def start_role(self, role: str) -> Service:
        """Start (or start again) the process playing `role`."""
        service = self._service(role).start()
        self.services.append(service)
        self.roles[role] = service
        return service

    async def start(self) -> None:
        """Create the database, start every process, wait until each is up."""
        await migrate(self.database_url)
        for role in ("gateway", *CONSUMERS, *(("control",) if self.with_commands else ())):
            self.start_role(role)
        await self.wait_ready("gateway")
        await self.wait_consumers(self.names.ingest_queue, len(CONSUMERS))
        if self.with_commands:
            await self.wait_ready("control")
            self.start_role("agent")
            await self.wait_consumers(self.names.agent_queue(AGENT_ID), 1)

    async def wait_ready(self, role: str, timeout_s: float | None = None) -> None:
        """Wait until an HTTP role answers /readyz with 200."""
        await asyncio.to_thread(self.roles[role].wait_ready, timeout_s or self.ready_timeout_s)

    async def restart(self, role: str, sig: signal.Signals) -> None:
        """Stop `role` with `sig` (SIGTERM lets it finish its work) and start a new one."""
        old = self.roles[role]
        self._expected_exits.add(id(old))
        await asyncio.to_thread(old.kill if sig == signal.SIGKILL else old.stop)
        self.start_role(role)

    async def consumer_count(self, queue_name: str) -> int:
        """Consumers attached to a queue right now (asked of the broker directly)."""
        connection = await connect_failover(self.amqp_url, timeout_s=10)
        async with connection:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(queue_name, passive=True)
            except aio_pika.exceptions.ChannelClosed:  # not declared yet
                return 0
            return int(queue.declaration_result.consumer_count or 0)

    async def wait_consumers(self, queue_name: str, expected: int, timeout_s: float = 60) -> None:
        """Wait until `expected` consumers are attached to a queue."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await self.consumer_count(queue_name) != expected:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{expected} consumers not on {queue_name} after {timeout_s}s")
            await asyncio.sleep(0.1)

    def supervise(self) -> None:
        """Restart any process that exited by itself (as a supervisor would); note the crash."""
        for role, service in list(self.roles.items()):
            if id(service) in self._expected_exits or service.process is None:
                continue
            code = service.process.poll()
            if code is None:
                continue
            tail = " | ".join(service.output().strip().splitlines()[-3:])[-600:]
            self.crashes.append(f"{role} ({service.module}) exited {code} by itself: {tail}")
            log.error("chaos_service_crashed", role=role, code=code)
            self._expected_exits.add(id(service))
            self.start_role(role)

    async def watch(self, stop: asyncio.Event) -> None:
        """Supervise every half second until `stop` is set."""
        while not stop.is_set():
            self.supervise()
            await asyncio.sleep(0.5)

    def log_paths(self) -> list[str]:
        """Where every process of the run logged (kept for post-mortems)."""
        return [str(service.log_path) for service in self.services]

    async def close(self) -> None:
        """Stop every process, close the proxies, drop the database, delete the prefix."""
        for service in self.roles.values():
            self._expected_exits.add(id(service))
            await asyncio.to_thread(service.stop, 10.0)
        self.pg_proxy.close()
        if self.amqp_proxy is not None:
            self.amqp_proxy.close()
        self.agent_journal.unlink(missing_ok=True)
        connection = await connect_failover(self.amqp_url, timeout_s=10)
        async with connection:
            channel = await connection.channel()
            await delete_all(channel, self.names, extra_queues=tuple(self.extra_queues))
        conn = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await conn.close()
        log.info("chaos_stack_removed", database=self.database, prefix=self.names.prefix)
