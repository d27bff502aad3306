"""Concurrent requests share publishes; each learns the fate of the publish that carried it."""

from __future__ import annotations

import asyncio

import pytest

from api_gateway.coalescer import Coalescer, Overloaded
from proto.megapack.v1 import telemetry_pb2 as pb
from tests.support.waiting import until


def _envelope(batch_id: str) -> bytes:
    return pb.TelemetryEnvelope(batches=[pb.TelemetryBatch(batch_id=batch_id)]).SerializeToString()


async def test_concurrent_submissions_are_merged_into_valid_envelopes() -> None:
    published: list[bytes] = []
    gate = asyncio.Event()

    async def publish(body: bytes) -> None:
        await gate.wait()
        published.append(body)

    coalescer = Coalescer(publish=publish, max_pending_readings=1000, max_in_flight=1)
    coalescer.start()
    tasks = [asyncio.create_task(coalescer.submit(_envelope(str(i)), 1)) for i in range(20)]
    await until(lambda: coalescer.pending_readings == 20, what="all 20 queued or publishing")
    gate.set()
    await asyncio.gather(*tasks)
    await coalescer.close()
    ids = [b.batch_id for body in published for b in pb.TelemetryEnvelope.FromString(body).batches]
    assert sorted(ids, key=int) == [str(i) for i in range(20)]
    assert len(published) < 20, "requests queued behind a publish share the next one"
    assert coalescer.pending_readings == 0


async def test_a_failed_publish_fails_every_request_it_carried() -> None:
    async def publish(body: bytes) -> None:
        raise ConnectionError("broker gone")

    coalescer = Coalescer(publish=publish, max_pending_readings=1000)
    coalescer.start()
    results = await asyncio.gather(
        *(coalescer.submit(_envelope(str(i)), 1) for i in range(5)), return_exceptions=True
    )
    await coalescer.close()
    assert all(isinstance(r, ConnectionError) for r in results)
    assert coalescer.pending_readings == 0


async def test_overload_is_refused_before_queuing() -> None:
    gate = asyncio.Event()

    async def publish(body: bytes) -> None:
        await gate.wait()

    coalescer = Coalescer(publish=publish, max_pending_readings=10)
    coalescer.start()
    first = asyncio.create_task(coalescer.submit(_envelope("a"), 8))
    await until(lambda: coalescer.pending_readings == 8, what="the first submission held")
    with pytest.raises(Overloaded):
        await coalescer.submit(_envelope("b"), 5)
    gate.set()
    await first
    await coalescer.close()
