"""Broker and database outages, a killed consumer, a poison message: nothing accepted is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import httpx
import pytest

from common.topology import Names, declare_telemetry
from proto.megapack.v1 import telemetry_pb2 as pb
from tests.support.barriers import wait_queue_drained
from tests.support.proxy import TcpProxy
from tests.support.readings import count_rows, megapack, now_ms, unique, wait_rows
from tests.support.stack import DEVICE_SECRET, Service, free_port

MEGAPACK = "/v1/telemetry/megapack"


def _proxy_url(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    return parts._replace(
        netloc=parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    ).geturl()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def _gateway(env: dict[str, str], started: list[Service]) -> Service:
    port = free_port()
    service = Service("api_gateway", env, "--port", str(port), port=port).start()
    started.append(service)
    return service


def _ingestion(env: dict[str, str], started: list[Service]) -> Service:
    service = Service("ingestion_service", env).start()
    started.append(service)
    return service


async def _logged(service: Service, text: str, *, times: int, timeout_s: float = 20) -> None:
    """Wait until the service's log holds `text` at least `times` times."""
    deadline = time.monotonic() + timeout_s
    while service.log_path.read_text(errors="replace").count(text) < times:
        service.assert_running()
        assert time.monotonic() < deadline, f"{text} logged < {times} times:\n{service.output()}"
        await asyncio.sleep(0.05)


async def _settled(consumer: Service, env: dict[str, str]) -> None:
    """Stop the consumer (it stores and acks what it holds) and wait for its queue to be
    empty: every message was then processed, and no redelivery can add a row afterwards."""
    assert consumer.stop() == 0
    await wait_queue_drained(env["AMQP_URL"], Names(env["AMQP_PREFIX"]).ingest_queue)


async def _post(http: httpx.AsyncClient, unit: str, start_ms: int, count: int) -> httpx.Response:
    readings = [megapack(unit, start_ms + i) for i in range(count)]
    return await http.post(MEGAPACK, json={"readings": readings})


async def test_broker_unreachable_gives_503_and_the_gateway_recovers(
    stack_env: dict[str, str], amqp_prefix: str, services: list[Service]
) -> None:
    broker = urlsplit(stack_env["AMQP_URL"])
    proxy = TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672).start()
    try:
        env = {**stack_env, "AMQP_URL": _proxy_url(stack_env["AMQP_URL"], proxy),
               "AMQP_PREFIX": f"{amqp_prefix}brokercut.", "PUBLISH_TIMEOUT_S": "2"}  # fmt: skip
        gateway = _gateway(env, services).wait_ready()
        unit = unique("MPX")
        async with httpx.AsyncClient(
            base_url=gateway.url, headers={"X-API-Key": DEVICE_SECRET}
        ) as http:
            assert (await _post(http, unit, now_ms(), 5)).status_code == 202
            proxy.cut()
            refused = await _post(http, unit, now_ms(), 5)
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) >= 1
            assert (await http.get("/readyz")).status_code == 503
            proxy.restore()
            statuses = []
            for _ in range(100):  # the robust connection comes back by itself
                statuses.append((await _post(http, unit, now_ms(), 5)).status_code)
                if statuses[-1] == 202:
                    break
                await asyncio.sleep(0.2)
            assert statuses[-1] == 202, statuses
            assert (await http.get("/readyz")).status_code == 200
    finally:
        proxy.close()


async def test_database_outage_while_messages_arrive_loses_nothing(
    stack_env: dict[str, str], amqp_prefix: str, database_url: str, db: asyncpg.Connection,
    services: list[Service],
) -> None:  # fmt: skip
    pg = urlsplit(database_url)
    proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432).start()
    try:
        env = {**stack_env, "AMQP_PREFIX": f"{amqp_prefix}dbcut."}
        gateway = _gateway(env, services).wait_ready()
        consumer = _ingestion({**env, "DATABASE_URL": _proxy_url(database_url, proxy)}, services)
        unit = unique("MPY")
        start = now_ms() - 100_000
        async with httpx.AsyncClient(
            base_url=gateway.url, headers={"X-API-Key": DEVICE_SECRET}
        ) as http:
            assert (await _post(http, unit, start, 100)).status_code == 202
            assert await wait_rows(db, "megapack_telemetry", unit, 100) == 100
            proxy.cut()
            for batch in range(1, 11):
                assert (await _post(http, unit, start + batch * 100, 100)).status_code == 202
            # The barrier: the consumer holds the new messages and has failed to store them.
            await _logged(consumer, '"store_failed_retrying"', times=2)
            assert await count_rows(db, "megapack_telemetry", unit) == 100
            proxy.restore()
            assert await wait_rows(db, "megapack_telemetry", unit, 1100, timeout_s=30) == 1100
            await _settled(consumer, env)
            assert await count_rows(db, "megapack_telemetry", unit) == 1100
    finally:
        proxy.close()


async def test_consumer_killed_mid_stream_stores_everything_exactly_once(
    stack_env: dict[str, str], amqp_prefix: str, db: asyncpg.Connection, services: list[Service]
) -> None:
    env = {**stack_env, "AMQP_PREFIX": f"{amqp_prefix}kill.", "INGEST_BATCH_READINGS": "500"}
    gateway = _gateway(env, services).wait_ready()
    consumer = _ingestion(env, services)
    unit = unique("MPK")
    start = now_ms() - 200_000
    accepted = 0
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"X-API-Key": DEVICE_SECRET}
    ) as http:
        for batch in range(60):
            response = await _post(http, unit, start + batch * 50, 50)
            assert response.status_code == 202
            accepted += response.json()["accepted"]
            if batch in (15, 35):
                consumer.kill()  # SIGKILL: no chance to finish its batch
                consumer = _ingestion(env, services)
    assert await wait_rows(db, "megapack_telemetry", unit, accepted, timeout_s=40) == accepted
    await _settled(consumer, env)
    assert await count_rows(db, "megapack_telemetry", unit) == accepted == 3000


def _unstorable() -> bytes:
    """Columns that decode but cannot be stored: an instant past what timestamptz holds."""
    batch = pb.TelemetryBatch(batch_id="unstorable", received_at_us=1, key_id="sim")
    columns = batch.megapack_columns
    columns.unit_id.append("MP-FAR")
    columns.site_id.append("SITE-01")
    columns.timestamp_ms.append(2**62)
    for name in ("soc_percent", "soh_percent", "power_kw", "voltage_v", "current_a"):
        getattr(columns, name).append(1.0)
    columns.temperature_c.append(20.0)
    columns.state.append(pb.UNIT_STATE_IDLE)
    columns.fault_code_counts.append(0)
    return pb.TelemetryEnvelope(batches=[batch]).SerializeToString()


@pytest.mark.parametrize("poison", [b"\x0a\xff\xff not protobuf", _unstorable()])
async def test_poison_message_goes_to_the_dead_letter_queue_and_the_rest_flow(
    stack_env: dict[str, str], amqp_prefix: str, amqp_url: str, db: asyncpg.Connection,
    services: list[Service], poison: bytes,
) -> None:  # fmt: skip
    prefix = f"{amqp_prefix}poison-{len(poison)}."
    env = {**stack_env, "AMQP_PREFIX": prefix}
    gateway = _gateway(env, services).wait_ready()
    _ingestion(env, services)
    names = Names(prefix)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(names.telemetry)
        await exchange.publish(
            aio_pika.Message(poison, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key="megapack",
        )
        unit = unique("MPZ")
        async with httpx.AsyncClient(
            base_url=gateway.url, headers={"X-API-Key": DEVICE_SECRET}
        ) as http:
            assert (await _post(http, unit, now_ms(), 20)).status_code == 202
        assert await wait_rows(db, "megapack_telemetry", unit, 20) == 20
        dead: int | None = None
        for _ in range(50):
            dlq = await channel.declare_queue(names.dead_letter_queue, passive=True)
            dead = dlq.declaration_result.message_count
            if dead:
                break
            await asyncio.sleep(0.1)
        assert dead == 1
        message = await (await channel.get_queue(names.dead_letter_queue)).get(timeout=5)
        assert message.body == poison
        await message.ack()


async def test_no_queue_bound_means_503_not_a_lost_reading(
    stack_env: dict[str, str], amqp_prefix: str, amqp_url: str, services: list[Service]
) -> None:
    prefix = f"{amqp_prefix}unrouted."
    gateway = _gateway({**stack_env, "AMQP_PREFIX": prefix}, services).wait_ready()
    names = Names(prefix)
    connection = await aio_pika.connect(amqp_url)
    async with (
        connection,
        httpx.AsyncClient(base_url=gateway.url, headers={"X-API-Key": DEVICE_SECRET}) as http,
    ):
        channel = await connection.channel()
        await channel.queue_delete(names.ingest_queue)  # nobody would ever store it
        refused = await _post(http, unique("MPU"), now_ms(), 3)
        assert refused.status_code == 503
        assert "Retry-After" in refused.headers
        await declare_telemetry(channel, names)
        assert (await _post(http, unique("MPU"), now_ms(), 3)).status_code == 202
