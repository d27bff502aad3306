"""The compose broker users (deploy/rabbitmq) on the local RabbitMQ: each can do its job, no more.

The definitions are rendered exactly as `python -m deploy.rabbitmq render` does for compose, into
a throwaway virtual host with user names of this run's own, imported with `rabbitmqctl`, and
removed afterwards.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import aio_pika
import aiormq
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel

from common.broker import Broker
from common.readings import MegapackReading
from common.topology import (
    Names,
    declare_alert_notifications,
    declare_commands,
    declare_exchange,
    declare_telemetry,
)
from common.topology import quorum_arguments as quorum
from deploy.rabbitmq.definitions import load_template, render, user_names
from proto.megapack.v1 import telemetry_pb2 as pb
from tests.support.readings import megapack, model_to_pb, now_ms, unique, wait_rows
from tests.support.stack import ROOT, Service, service_env

NAMES = Names("")  # compose runs without a prefix; the virtual host keeps this run apart
Refused = aiormq.exceptions.ChannelAccessRefused


@dataclass(frozen=True)
class BrokerUsers:
    """The imported users of one throwaway virtual host."""

    amqp_url: str
    vhost: str
    prefix: str
    passwords: dict[str, str]

    def url(self, user: str) -> str:
        """AMQP URL of one compose user (`gateway`, `ingestion`, ...) in the virtual host."""
        base = self.amqp_url.split("@", 1)[1].split("/", 1)[0]
        name, password = quote(self.prefix + user, safe=""), self.passwords[user]
        return f"amqp://{name}:{password}@{base}/{quote(self.vhost, safe='')}"


def _rabbitmqctl(*args: str, stdin: str | None = None) -> None:
    subprocess.run(
        ["rabbitmqctl", "-q", *args], input=stdin, text=True, capture_output=True, check=True
    )


@pytest.fixture(scope="module")
def users(amqp_url: str) -> Iterator[BrokerUsers]:
    template = load_template()
    run = uuid.uuid4().hex[:8]
    passwords = {user: secrets.token_urlsafe(18) for user in user_names(template)}
    created = BrokerUsers(amqp_url, f"megapack-perm-{run}", f"perm-{run}-", passwords)
    definitions = render(template, passwords, vhost=created.vhost, user_prefix=created.prefix)
    _rabbitmqctl("import_definitions", stdin=json.dumps(definitions))
    yield created
    cleanup = [
        subprocess.Popen(["rabbitmqctl", "-q", "delete_user", created.prefix + user])
        for user in passwords
    ]
    _rabbitmqctl("delete_vhost", created.vhost)
    for process in cleanup:
        process.wait(60)


@asynccontextmanager
async def session(users: BrokerUsers, user: str) -> AsyncIterator[aio_pika.abc.AbstractConnection]:
    """A plain connection as one of the compose users."""
    connection = await aio_pika.connect(users.url(user), timeout=10)
    async with connection:
        yield connection


async def refused(connection: aio_pika.abc.AbstractConnection, action: str) -> str:
    """Run one operation on a fresh channel; it must be refused (403 closes the channel)."""
    channel = await connection.channel(publisher_confirms=True)
    with pytest.raises(Refused) as caught:
        await _operation(channel, action)
    return str(caught.value)


async def _operation(channel: AbstractChannel, action: str) -> object:
    verb, _, name = action.partition(":")
    body = aio_pika.Message(b"x", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    if verb == "consume":
        queue = await channel.get_queue(name, ensure=False)
        return await queue.consume(_ignore)
    if verb == "get":
        queue = await channel.get_queue(name, ensure=False)
        return await queue.get(fail=False)
    if verb == "publish":
        exchange = await channel.get_exchange(name, ensure=False)
        return await exchange.publish(body, routing_key="megapack.MP-0001")
    if verb == "declare_telemetry":
        return await declare_telemetry(channel, NAMES)
    if verb == "delete":
        return await channel.queue_delete(name)
    raise AssertionError(f"unknown operation {action!r}")


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    """A consumer callback that never runs: the consume is refused first."""


def _envelope(unit: str) -> bytes:
    reading = MegapackReading.model_validate(megapack(unit, now_ms()))
    batch = pb.TelemetryBatch(
        batch_id=str(uuid.uuid4()),
        received_at_us=time.time_ns() // 1000,
        key_id="sim",
        megapack=[model_to_pb(reading)],
    )
    return pb.TelemetryEnvelope(batches=[batch]).SerializeToString()


async def _only_exchange(channel: AbstractChannel, names: Names) -> object:
    """What the gateway declares under its user: the exchange it publishes to, nothing else."""
    return await declare_exchange(channel, names.telemetry)


@pytest.fixture(scope="module")
def consumer(users: BrokerUsers, database_url: str) -> Iterator[Service]:
    """The real ingestion service, connected as the `ingestion` user."""
    env = service_env(database_url=database_url, amqp_url=users.url("ingestion"), prefix="")
    service = Service("ingestion_service", env).start()
    yield service
    assert service.stop() == 0, service.output()


async def test_gateway_user_publishes_and_ingestion_user_stores(
    users: BrokerUsers, consumer: Service, db: asyncpg.Connection
) -> None:
    broker = Broker(users.url("gateway"), NAMES, declare=_only_exchange)
    await broker.start()
    try:
        await broker.wait_connected(10)
        unit = unique("MP-PERM")
        await broker.publish(NAMES.telemetry, "megapack", _envelope(unit))
        assert await wait_rows(db, "megapack_telemetry", unit, 1) == 1, consumer.output()
    finally:
        await broker.close()
    consumer.assert_running()


async def test_gateway_user_cannot_read_or_touch_anything_else(users: BrokerUsers) -> None:
    async with session(users, "gateway") as gateway:
        assert "ingest.telemetry" in await refused(gateway, f"consume:{NAMES.ingest_queue}")
        assert "ingest.telemetry" in await refused(gateway, f"get:{NAMES.ingest_queue}")
        assert "ingest.telemetry" in await refused(gateway, f"get:{NAMES.dead_letter_queue}")
        # declaring the ingest queue (it has a dead-letter exchange) would need read on it
        await refused(gateway, "declare_telemetry")
        assert "commands" in await refused(gateway, f"publish:{NAMES.commands}")
        assert "alerts" in await refused(gateway, f"publish:{NAMES.alerts}")
        await refused(gateway, f"delete:{NAMES.ingest_queue}")


async def test_ingestion_user_cannot_publish_commands_or_read_acks(users: BrokerUsers) -> None:
    async with session(users, "ingestion") as ingestion:
        assert "commands" in await refused(ingestion, f"publish:{NAMES.commands}")
        assert "command_acks" in await refused(ingestion, f"publish:{NAMES.command_acks}")
        assert "control.acks" in await refused(ingestion, f"consume:{NAMES.acks_queue}")


async def test_replay_dead_letters_runs_as_the_ingestion_user(
    users: BrokerUsers, consumer: Service, db: asyncpg.Connection
) -> None:
    unit = unique("MP-DLQ")
    async with session(users, "admin") as admin:  # plant a dead letter, as after a failed store
        channel = await admin.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(NAMES.dead_letters)
        message = aio_pika.Message(_envelope(unit), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await exchange.publish(message, routing_key="megapack")
    replay = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ingestion_service", "replay-dead-letters", "--requeue"],
        cwd=ROOT,
        env={**consumer.env, "AMQP_URL": users.url("ingestion")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr
    assert "1 dead-lettered message(s) re-queued" in replay.stdout
    assert await wait_rows(db, "megapack_telemetry", unit, 1) == 1, consumer.output()


async def test_commands_flow_from_control_to_simulator_and_acks_back(users: BrokerUsers) -> None:
    agent_queue = NAMES.agent_queue(f"sim-{uuid.uuid4().hex[:6]}")
    async with (
        session(users, "control") as control,
        session(users, "simulator") as simulator,
    ):
        control_channel = await control.channel(publisher_confirms=True)
        acks = await declare_commands(control_channel, NAMES)
        sim_channel = await simulator.channel(publisher_confirms=True)
        commands = await declare_exchange(sim_channel, NAMES.commands)
        inbox = await sim_channel.declare_queue(agent_queue, durable=True, arguments=quorum())
        await inbox.bind(commands, routing_key="megapack.MP-0001")

        command_id = str(uuid.uuid4()).encode()
        commands_out = await control_channel.get_exchange(NAMES.commands)
        await commands_out.publish(aio_pika.Message(command_id), routing_key="megapack.MP-0001")
        delivered = await inbox.get(timeout=5)
        assert delivered.body == command_id
        await delivered.ack()

        acks_out = await declare_exchange(sim_channel, NAMES.command_acks)
        await acks_out.publish(aio_pika.Message(b"ack:" + command_id), routing_key="megapack.x")
        ack = await acks.get(timeout=5)
        assert ack.body == b"ack:" + command_id
        await ack.ack()

        # a unit agent never issues commands, nor reads another service's queue
        assert "commands" in await refused(simulator, f"publish:{NAMES.commands}")
        assert "control.acks" in await refused(simulator, f"consume:{NAMES.acks_queue}")
        assert "ingest.telemetry" in await refused(simulator, f"get:{NAMES.ingest_queue}")
        # the control service neither reads agents' queues nor fakes their acks
        assert agent_queue in await refused(control, f"consume:{agent_queue}")
        assert "command_acks" in await refused(control, f"publish:{NAMES.command_acks}")
        await sim_channel.queue_delete(agent_queue)


async def test_monitoring_user_publishes_alerts_and_inspects_queues_passively(
    users: BrokerUsers,
) -> None:
    async with session(users, "monitoring") as monitoring:
        channel = await monitoring.channel(publisher_confirms=True)
        alerts = await declare_exchange(channel, NAMES.alerts)
        await alerts.publish(aio_pika.Message(b"{}"), routing_key="alert.raised")
        notify = await declare_alert_notifications(channel, NAMES)  # the notifier's queue
        assert notify.declaration_result.consumer_count == 0
        queue = await channel.get_queue(NAMES.ingest_queue, ensure=True)  # passive declare
        assert queue.declaration_result.message_count is not None
        assert "ingest.telemetry" in await refused(monitoring, f"consume:{NAMES.ingest_queue}")
        assert "telemetry" in await refused(monitoring, f"publish:{NAMES.telemetry}")
        assert "commands" in await refused(monitoring, f"publish:{NAMES.commands}")
