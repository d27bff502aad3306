"""`AMQP_URL` lists: clients skip a dead broker, and move on when their node of a cluster dies.

The cluster is three throwaway nodes beside the machine's broker (chaos.rabbit_cluster), which
is checked to be the same single node afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import aio_pika
import pytest

from chaos.rabbit_cluster import Cluster, machine_broker_nodes
from common.amqp_urls import node_label
from common.broker import Broker, BrokerUnavailable, connect_failover
from common.topology import Names, declare_exchange, declare_telemetry
from tests.support.stack import free_port


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    before = machine_broker_nodes()
    assert len(before) == 1, before
    nodes = Cluster()
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.close()
    assert machine_broker_nodes() == before  # nothing joined, nothing left behind
    assert not nodes.base.exists()


async def test_a_dead_broker_first_in_the_list_is_skipped(amqp_url: str) -> None:
    names = Names(f"fo-{uuid.uuid4().hex[:8]}.")
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    broker = Broker(
        f"{dead},{amqp_url}", names, declare=lambda ch, n: declare_exchange(ch, n.telemetry)
    )
    await broker.start()
    try:
        await broker.wait_connected(30)
        assert broker.node == node_label(amqp_url)
        await broker.publish(names.telemetry, "megapack", b"x")  # confirmed (no queue bound)
    finally:
        await broker.channel.exchange_delete(names.telemetry)
        await broker.close()


async def _publish_until(broker: Broker, names: Names, ids: list[str], timeout_s: float) -> None:
    """Publish each id, retrying one the broker refuses (503 for the gateway), in order."""
    deadline = time.monotonic() + timeout_s
    for message_id in ids:
        while True:
            try:
                await broker.publish(names.telemetry, "megapack", b"r", message_id=message_id)
                break
            except BrokerUnavailable:
                assert time.monotonic() < deadline, f"no node confirmed {message_id}"
                await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(480)
async def test_publisher_and_consumer_move_on_when_their_node_is_killed(cluster: Cluster) -> None:
    names = Names(f"fo-{uuid.uuid4().hex[:8]}.")
    first = cluster.nodes[0]
    publisher = Broker(cluster.amqp_url, names, declare=declare_telemetry)
    await publisher.start()
    consumer = await connect_failover(cluster.amqp_url)
    received: set[str] = set()

    async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        received.add(str(message.message_id))
        await message.ack()

    try:
        await publisher.wait_connected(60)
        assert publisher.node == consumer.node == node_label(first.url)
        members = await asyncio.to_thread(cluster.queue_members, names.ingest_queue, first)
        assert sorted(members) == sorted(node.name for node in cluster.nodes)  # three replicas
        channel = await consumer.channel()
        await channel.set_qos(prefetch_count=50)
        queue = await declare_telemetry(channel, names)
        await queue.consume(take)

        before = [f"before-{n}" for n in range(20)]
        await _publish_until(publisher, names, before, timeout_s=30)
        await asyncio.to_thread(cluster.kill, first)
        after = [f"after-{n}" for n in range(20)]
        await _publish_until(publisher, names, after, timeout_s=90)

        assert publisher.node != node_label(first.url)
        deadline = time.monotonic() + 90
        while not received.issuperset(before + after):
            assert time.monotonic() < deadline, sorted(set(before + after) - received)
            await asyncio.sleep(0.2)
        assert consumer.node != node_label(first.url)
    finally:
        await consumer.close()
        await publisher.close()

    # the killed node comes back and rejoins: every replica is a member again
    await asyncio.to_thread(cluster.boot, first)
    await asyncio.to_thread(cluster.await_startup, first)
    await asyncio.to_thread(cluster.wait_members, running=3)
    members = await asyncio.to_thread(cluster.queue_members, names.ingest_queue, first)
    assert sorted(members) == sorted(node.name for node in cluster.nodes)
