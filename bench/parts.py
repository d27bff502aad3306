"""The limits of the parts, measured without the services: raw publish, raw COPY.

`python -m bench.parts publish|copy SPEC_JSON` runs one of them in its own process and prints
the result as one JSON line; `prefill` fills the ingest queue for the drain scenario.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aio_pika
import asyncpg
import orjson
import uvloop

from bench.bodies import BodyMaker
from common.broker import connect_failover
from common.codec import MEGAPACK_COLUMNS, PG_EPOCH_MS
from common.topology import Names, quorum_arguments
from db.telemetry import prepare_staging


async def _publish_for(
    exchange: aio_pika.abc.AbstractExchange,
    routing_key: str,
    body: bytes,
    *,
    seconds: float,
    in_flight: int,
) -> int:
    deadline = time.monotonic() + seconds
    count = 0

    async def one_lane() -> None:
        nonlocal count
        while time.monotonic() < deadline:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await exchange.publish(message, routing_key=routing_key)
            count += 1

    await asyncio.gather(*(one_lane() for _ in range(in_flight)))
    return count


async def raw_publish(
    *, amqp_url: str, prefix: str, seconds: float, in_flight: int, readings: int
) -> dict[str, Any]:
    """Persistent messages/s into a quorum queue, each publish awaiting its confirm."""
    body = BodyMaker(tag="RAWPUB", readings=readings, encoding="protobuf").envelope(
        received_at_us=time.time_ns() // 1000
    )
    queue_name = f"{Names(prefix).prefix}bench.raw"
    connection = await connect_failover(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True, arguments=quorum_arguments())
        started = time.perf_counter()
        count = await _publish_for(
            channel.default_exchange, queue_name, body, seconds=seconds, in_flight=in_flight
        )
        elapsed = time.perf_counter() - started
        await channel.queue_delete(queue_name)
    return {
        "messages": count,
        "message_bytes": len(body),
        "messages_per_s": count / elapsed,
        "readings_per_s": count * readings / elapsed,
        "in_flight": in_flight,
    }


async def raw_copy(*, dsn: str, seconds: float, batch_rows: int) -> dict[str, Any]:
    """Rows/s that plain COPY puts into megapack_telemetry (batches of `batch_rows`).

    Rows are encoded as the consumer encodes them (instants as integers), so the difference
    between this and the drain is what the consumer does beyond COPY.
    """
    base_us = (time.time_ns() // 1000 - PG_EPOCH_MS * 1000) - 3_600_000_000
    fixed = [
        (f"RAWCOPY-{i:05d}", f"SITE-{i % 50 + 1:02d}", 55.0, 97.5, -250.0, 480.0, -300.5, 24.5)
        for i in range(batch_rows)
    ]
    conn = await asyncpg.connect(dsn)
    await prepare_staging(conn)
    rows = 0
    copying_s = 0.0
    deadline = time.monotonic() + seconds
    try:
        batch = 0
        while time.monotonic() < deadline:
            stamp, received = base_us + batch * 1000, time.time_ns() // 1000 - PG_EPOCH_MS * 1000
            records: list[tuple[Any, ...]] = [
                (unit, stamp, site, soc, soh, power, volts, amps, temp, "CHARGING", [], received)
                for (unit, site, soc, soh, power, volts, amps, temp) in fixed
            ]
            started = time.perf_counter()
            await conn.copy_records_to_table(
                "megapack_telemetry", records=records, columns=MEGAPACK_COLUMNS
            )
            copying_s += time.perf_counter() - started
            rows += len(records)
            batch += 1
        await conn.execute("DELETE FROM megapack_telemetry WHERE unit_id LIKE 'RAWCOPY-%'")
    finally:
        await conn.close()
    return {"rows": rows, "batch_rows": batch_rows, "rows_per_s": rows / copying_s}


async def prefill(*, amqp_url: str, prefix: str, tag: str, messages: int, readings: int) -> int:
    """Publish `messages` gateway-shaped envelopes to the telemetry exchange; returns readings."""
    maker = BodyMaker(tag=tag, readings=readings, encoding="protobuf")
    connection = await connect_failover(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Names(prefix).telemetry)
        now_us = time.time_ns() // 1000
        bodies = [maker.envelope(received_at_us=now_us) for _ in range(messages)]
        for start in range(0, messages, 50):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key="megapack",
                    )
                    for body in bodies[start : start + 50]
                )
            )
    return messages * readings


def main() -> None:
    """`publish SPEC` or `copy SPEC`: run one measurement, print JSON."""
    commands = {"publish": raw_publish, "copy": raw_copy}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        print("usage: python -m bench.parts publish|copy SPEC_JSON  (started by `python -m bench`)")
        raise SystemExit(0 if "--help" in sys.argv or "-h" in sys.argv else 2)
    spec = orjson.loads(sys.argv[2])
    result = uvloop.run(commands[sys.argv[1]](**spec))  # type: ignore[operator]
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
