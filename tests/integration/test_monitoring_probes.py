"""The report's live inputs: gateway rates from two scrapes, the broker's queue probe (also
with the compose broker permissions)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest

from common.broker import Broker
from common.topology import Names, declare_telemetry
from monitoring_service.app import declare_monitoring
from monitoring_service.probes import BrokerQueueProbe, GatewayScraper, gateway_rates
from tests.integration.test_broker_permissions import BrokerUsers, users  # noqa: F401
from tests.support.readings import ev, megapack, now_ms
from tests.support.stack import Service


async def test_gateway_rates_come_from_two_scrapes(gateway: Service) -> None:
    scraper = GatewayScraper(urls=(gateway.url,), timeout_s=5)
    before = await scraper.sample()
    assert before is not None
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        unauthorised = await http.post("/v1/telemetry/megapack", json=megapack("x", now_ms()))
        also = await http.post("/v1/telemetry/ev", json=ev("y", now_ms()))
    assert unauthorised.status_code == also.status_code == 401
    after = await scraper.sample()
    assert after is not None
    rates = gateway_rates(before, after)
    assert rates is not None
    elapsed_s = (after.scraped_at - before.scraped_at).total_seconds()
    assert rates.rejections == {"401": 2}
    assert rates.requests_per_s == pytest.approx(2 / elapsed_s)
    assert await GatewayScraper(urls=("http://127.0.0.1:1",), timeout_s=1).sample() is None


@pytest.fixture
async def probe_broker(amqp_url: str, amqp_prefix: str) -> AsyncIterator[Broker]:
    broker = Broker(
        amqp_url, Names(f"{amqp_prefix}monq{uuid.uuid4().hex[:6]}."), declare=declare_monitoring
    )
    await broker.start()
    await broker.wait_connected(10)
    yield broker
    await broker.close()


async def test_queue_probe_reports_unknown_for_missing_queues(probe_broker: Broker) -> None:
    sample = await BrokerQueueProbe(broker=probe_broker).sample()
    assert (sample.depth, sample.consumers, sample.dead_letters) == (None, None, None)
    assert probe_broker.ready  # the publishing channel survived the refused declares
    await probe_broker.publish(probe_broker.names.alerts, "alert.raised.x", b"{}")


async def test_queue_probe_reads_depth_consumers_and_dead_letters(probe_broker: Broker) -> None:
    names = probe_broker.names
    await declare_telemetry(probe_broker.channel, names)  # as the gateway does
    for index in range(3):
        await probe_broker.publish(names.telemetry, "megapack", f"m{index}".encode())
    await probe_broker.publish(names.dead_letters, "megapack", b"poison")
    probe = BrokerQueueProbe(broker=probe_broker)
    sample = await probe.sample()
    assert (sample.depth, sample.consumers, sample.dead_letters) == (3, 0, 1)

    channel = probe_broker.channel
    queue = await channel.get_queue(names.ingest_queue, ensure=False)
    received: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
    tag = await queue.consume(received.put)
    await received.get()
    assert (await probe.sample()).consumers == 1
    await queue.cancel(tag)


async def test_the_compose_monitoring_user_can_probe_and_publish(
    users: BrokerUsers,  # noqa: F811 (the fixture imported above)
) -> None:
    """With the compose broker permissions: connect, read the queues, publish an alert event."""
    names = Names("")
    ingestion = Broker(users.url("ingestion"), names, declare=declare_telemetry)
    monitoring = Broker(users.url("monitoring"), names, declare=declare_monitoring)
    for broker in (ingestion, monitoring):
        await broker.start()
        await broker.wait_connected(10)
    try:
        await ingestion.publish(names.telemetry, "megapack", b"m")
        sample = await BrokerQueueProbe(broker=monitoring).sample()
        assert (sample.depth, sample.dead_letters) == (1, 0)
        await monitoring.publish(names.alerts, "alert.raised.unit_stale", b"{}")
    finally:
        await monitoring.close()
        await ingestion.close()
