"""Barriers: wait until something provably happened (a counter moved, a queue drained)."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import httpx
from prometheus_client.parser import text_string_to_metric_families


async def metric(url: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample at `url` (`/metrics` of a service); 0 if absent."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(url)).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def wait_metric(
    url: str, name: str, at_least: float, *, timeout_s: float = 20, **labels: str
) -> float:
    """Wait until the sample reaches `at_least`; fails with the last value seen."""
    deadline = time.monotonic() + timeout_s
    while (value := await metric(url, name, **labels)) < at_least:
        assert time.monotonic() < deadline, f"{name} stayed at {value} (< {at_least})"
        await asyncio.sleep(0.05)
    return value


async def queue_counts(amqp_url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue, from a passive declare."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        result = declared.declaration_result
        return result.message_count or 0, result.consumer_count or 0


async def wait_queue_drained(amqp_url: str, queue: str, *, timeout_s: float = 20) -> None:
    """Wait until a queue has no consumer and no message: with nobody consuming, an unacked
    message is ready again, so an empty queue then means every message was acknowledged."""
    deadline = time.monotonic() + timeout_s
    while (counts := await queue_counts(amqp_url, queue)) != (0, 0):
        assert time.monotonic() < deadline, f"{queue}: (messages, consumers) = {counts}"
        await asyncio.sleep(0.05)
