"""The stack under test: a fresh database and prefix, TCP proxies, gateway and consumers."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import structlog

from common.topology import Names, delete_all
from db.migrate import migrate
from tests.support.proxy import TcpProxy
from tests.support.stack import Service, free_port, service_env

log = structlog.get_logger("chaos")

POSTGRES_URL = os.environ.get("CHAOS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("CHAOS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
CONSUMERS = 2


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

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    gateway: Service | None = None
    consumers: list[Service] = field(default_factory=list)
    extra_queues: list[str] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    _expected_exits: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.database = f"megapack_chaos_{self.run_id}"
        self.database_url = f"{POSTGRES_URL}/{self.database}"
        self.amqp_url = AMQP_URL
        self.names = Names(f"chaos-{self.run_id}.")
        self.pg_proxy = _proxy_for(POSTGRES_URL, 5432)
        self.amqp_proxy = _proxy_for(AMQP_URL, 5672)
        self.gateway_port = free_port()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a service: database and broker reached through the proxies."""
        return service_env(
            database_url=_through(self.database_url, self.pg_proxy.port),
            amqp_url=_through(self.amqp_url, self.amqp_proxy.port),
            prefix=self.names.prefix,
            **extra,
        )

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    async def start(self) -> None:
        """Create the database, start the gateway and the consumers, wait until all are up."""
        await migrate(self.database_url)
        self.start_gateway()
        for _ in range(CONSUMERS):
            self.consumers.append(self._track(Service("ingestion_service", self.env()).start()))
        await self.wait_gateway()
        await self.wait_consumers(CONSUMERS)

    def _track(self, service: Service) -> Service:
        self.services.append(service)
        return service

    def start_gateway(self) -> None:
        """Start (or restart) the gateway on its fixed port."""
        env = self.env(GATEWAY_PORT=str(self.gateway_port))
        self.gateway = self._track(Service("api_gateway", env, port=self.gateway_port).start())

    async def wait_gateway(self, timeout_s: float = 30.0) -> None:
        """Wait until the gateway answers /readyz with 200."""
        assert self.gateway is not None
        await asyncio.to_thread(self.gateway.wait_ready, timeout_s)

    def restart_gateway(self, sig: signal.Signals) -> None:
        """Stop the gateway with `sig` (SIGTERM waits for it to drain) and start a new one."""
        assert self.gateway is not None
        self._expected_exits.add(id(self.gateway))
        if sig == signal.SIGKILL:
            self.gateway.kill()
        else:
            self.gateway.stop()
        self.start_gateway()

    def kill_consumer(self, index: int) -> None:
        """SIGKILL one consumer and start its replacement at once."""
        self._expected_exits.add(id(self.consumers[index]))
        self.consumers[index].kill()
        self.consumers[index] = self._track(Service("ingestion_service", self.env()).start())

    async def consumer_count(self) -> int:
        """Consumers attached to the ingest queue right now (asked of the broker directly)."""
        connection = await aio_pika.connect(self.amqp_url, timeout=10)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.names.ingest_queue, passive=True)
            return int(queue.declaration_result.consumer_count or 0)

    async def wait_consumers(self, expected: int, timeout_s: float = 60.0) -> None:
        """Wait until `expected` consumers are attached to the ingest queue."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await self._consumer_count_or_zero() != expected:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{expected} consumers not attached after {timeout_s}s")
            await asyncio.sleep(0.1)

    async def _consumer_count_or_zero(self) -> int:
        try:
            return await self.consumer_count()
        except aio_pika.exceptions.ChannelClosed:  # queue not declared yet
            return 0

    def supervise(self) -> None:
        """Restart any process that exited by itself (as a supervisor would); note it as a crash."""
        current = [self.gateway, *self.consumers]
        for service in current:
            if service is None or id(service) in self._expected_exits:
                continue
            assert service.process is not None
            code = service.process.poll()
            if code is None:
                continue
            tail = " | ".join(service.output().strip().splitlines()[-3:])[-600:]
            self.crashes.append(f"{service.module} exited {code} by itself: {tail}")
            log.error("chaos_service_crashed", service=service.module, code=code)
            self._expected_exits.add(id(service))
            if service is self.gateway:
                self.start_gateway()
            else:
                index = self.consumers.index(service)
                self.consumers[index] = self._track(
                    Service("ingestion_service", self.env()).start()
                )

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
        for service in self.services:
            await asyncio.to_thread(service.stop, 10.0)
        self.pg_proxy.close()
        self.amqp_proxy.close()
        connection = await aio_pika.connect(self.amqp_url, timeout=10)
        async with connection:
            channel = await connection.channel()
            await delete_all(channel, self.names, extra_queues=tuple(self.extra_queues))
        conn = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await conn.close()
        log.info("chaos_stack_removed", database=self.database, prefix=self.names.prefix)
