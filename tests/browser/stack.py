"""The whole system for the browser tests: every service and the simulator, on a database
and an AMQP prefix of their own."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika

from common.topology import Names
from db.migrate import migrate
from tests.support.databases import drop_database
from tests.support.stack import DEVICE_SECRET, Service, free_port, service_env

MEGAPACKS = 6
EVS = 8


class ConsoleStack:
    """Gateway, ingestion, control, monitoring (the console) and a simulated fleet."""

    def __init__(self, *, base_database_url: str, amqp_url: str, prefix: str) -> None:
        self.database_url = f"{base_database_url.rsplit('/', 1)[0]}/console_{uuid.uuid4().hex[:10]}"
        env = service_env(database_url=self.database_url, amqp_url=amqp_url, prefix=prefix)
        self.gateway = Service("api_gateway", env, port=free_port())
        self.gateway.env["GATEWAY_PORT"] = str(self.gateway.port)
        self.ingestion = Service("ingestion_service", env)
        self.monitoring = Service("monitoring_service", env, port=free_port())
        self.control = Service("control_service", env, port=free_port())
        self.monitoring.env.update(
            MONITORING_PORT=str(self.monitoring.port),
            MONITOR_INTERVAL_S="1",
            GATEWAY_URL=self.gateway.url,
            CONSOLE_CONTROL_URL=self.control.url,
        )
        self.control.env.update(
            CONTROL_PORT=str(self.control.port), CONSOLE_ORIGINS=self.monitoring.url
        )
        self.simulator = Service("simulator", env)
        self.simulator.env.update(
            MEGAPACK_COUNT=str(MEGAPACKS),
            EV_COUNT=str(EVS),
            SITE_COUNT="2",
            TELEMETRY_INTERVAL_S="1",
            SIM_SEED="16",
            FAULT_RATE="0",
            GATEWAY_URL=self.gateway.url,
            DEVICE_API_KEY=DEVICE_SECRET,
            SIM_AGENT_ID="sim-console",
            SIM_FAULTED_UNITS="MP-0002",
        )

    def services(self) -> tuple[Service, ...]:
        return (self.simulator, self.control, self.monitoring, self.ingestion, self.gateway)

    def start(self) -> ConsoleStack:
        """Migrate, start everything and wait until each HTTP service is ready."""
        asyncio.run(migrate(self.database_url))
        self.gateway.start().wait_ready(timeout_s=90)
        self.ingestion.start()
        self.control.start().wait_ready(timeout_s=90)
        self.monitoring.start().wait_ready(timeout_s=90)
        self.simulator.start()
        asyncio.run(self._agent_listening())
        return self

    async def _agent_listening(self, timeout_s: float = 60) -> None:
        """Wait until the simulator's command agent consumes its queue."""
        names = Names(self.simulator.env["AMQP_PREFIX"])
        queue_name = names.agent_queue(self.simulator.env["SIM_AGENT_ID"])
        deadline = time.monotonic() + timeout_s
        async with await aio_pika.connect(self.simulator.env["AMQP_URL"]) as connection:
            while True:
                self.simulator.assert_running()
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(queue_name, passive=True)
                    if queue.declaration_result.consumer_count:
                        return
                except aio_pika.exceptions.ChannelClosed:
                    pass  # not declared yet (a failed passive declare closes the channel)
                assert time.monotonic() < deadline, "the simulator's agent never consumed"
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """Stop every process, then drop the database."""
        for service in self.services():
            service.stop()
        asyncio.run(drop_database(self.database_url))

    def logs(self) -> str:
        """Everything every service printed."""
        return "\n".join(s.log_path.read_text(errors="replace") for s in self.services())
