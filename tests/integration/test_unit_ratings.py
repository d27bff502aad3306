"""Per-unit ratings (SPEC §12): readings carry them, `units` keeps the latest a unit reported."""

from __future__ import annotations

import aio_pika
import asyncpg
import httpx

from common.readings import MegapackReading
from common.topology import Names
from proto.megapack.v1 import telemetry_pb2 as pb
from tests.support.readings import megapack, model_to_pb, now_ms, unique, wait_rows

PROTOBUF = {"Content-Type": "application/x-protobuf"}


async def ratings_of(db: asyncpg.Connection, unit: str) -> tuple[float | None, float | None]:
    row = await db.fetchrow(
        "SELECT rated_power_kw, capacity_kwh FROM units WHERE unit_id = $1", unit
    )
    assert row is not None, unit
    return row["rated_power_kw"], row["capacity_kwh"]


async def test_units_keep_the_latest_ratings_a_unit_reported(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit, plain = unique("MPR"), unique("MPR0")
    start = now_ms() - 60_000
    readings = [
        megapack(unit, start, rated_power_kw=1927.0, capacity_kwh=3854.0),
        megapack(unit, start + 1_000, rated_power_kw=979.0, capacity_kwh=3916.0),
        megapack(plain, start),
    ]
    response = await client.post("/v1/telemetry/megapack", json={"readings": readings})
    assert response.status_code == 202, response.text
    assert await wait_rows(db, "megapack_telemetry", unit, 2) == 2
    assert await ratings_of(db, unit) == (979.0, 3916.0)
    assert await ratings_of(db, plain) == (None, None)  # a unit that never said stays unknown

    # A later reading without ratings keeps them; one with only a capacity changes only that.
    response = await client.post("/v1/telemetry/megapack", json=megapack(unit, start + 2_000))
    assert response.status_code == 202, response.text
    assert await wait_rows(db, "megapack_telemetry", unit, 3) == 3
    assert await ratings_of(db, unit) == (979.0, 3916.0)
    response = await client.post(
        "/v1/telemetry/megapack", json=megapack(unit, start + 3_000, capacity_kwh=3900.0)
    )
    assert response.status_code == 202, response.text
    assert await wait_rows(db, "megapack_telemetry", unit, 4) == 4
    assert await ratings_of(db, unit) == (979.0, 3900.0)

    # An older reading arriving late does not move them back.
    response = await client.post(
        "/v1/telemetry/megapack",
        json=megapack(unit, start - 5_000, rated_power_kw=500.0, capacity_kwh=1000.0),
    )
    assert response.status_code == 202, response.text
    assert await wait_rows(db, "megapack_telemetry", unit, 5) == 5
    assert await ratings_of(db, unit) == (979.0, 3900.0)


async def test_protobuf_readings_carry_ratings(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = unique("MPRP")
    start = now_ms() - 10_000
    models = [
        MegapackReading.model_validate(
            megapack(f"{unit}-{i}", start + i, rated_power_kw=900.0 + i, capacity_kwh=3900.0)
        )
        for i in range(40)  # enough for the gateway's column checks
    ]
    body = pb.TelemetryBatch(megapack=[model_to_pb(m) for m in models]).SerializeToString()
    response = await client.post("/v1/telemetry/megapack", content=body, headers=PROTOBUF)
    assert response.status_code == 202, response.text
    assert await wait_rows(db, "megapack_telemetry", unit, 40) == 40
    assert await ratings_of(db, f"{unit}-0") == (900.0, 3900.0)
    assert await ratings_of(db, f"{unit}-39") == (939.0, 3900.0)


async def test_implausible_ratings_are_a_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    unit = unique("MPRB")
    for field, value in [
        ("rated_power_kw", 0.0),
        ("rated_power_kw", 1_927_000.0),  # W sent as kW
        ("capacity_kwh", -1.0),
        ("capacity_kwh", "3854"),
    ]:
        readings = [megapack(f"{unit}-{i}", now_ms() - i) for i in range(40)]
        readings[7][field] = value
        response = await client.post("/v1/telemetry/megapack", json={"readings": readings})
        assert response.status_code == 422, (field, value, response.text)
        problems = response.json()["detail"]
        assert [(p["index"], p["loc"][0]) for p in problems] == [(7, field)], problems


async def test_ratings_survive_the_redelivery_path(
    client: httpx.AsyncClient, db: asyncpg.Connection, amqp_url: str, amqp_prefix: str
) -> None:
    """A message holding an already stored reading goes through the staging insert."""
    unit, marker = unique("MPRD"), unique("MPRM")
    start = now_ms() - 10_000

    def envelope(*readings: pb.MegapackReading) -> bytes:
        batch = pb.TelemetryBatch(batch_id="r", received_at_us=start * 1000, key_id="sim")
        batch.megapack.extend(readings)
        return pb.TelemetryEnvelope(batches=[batch]).SerializeToString()

    def reading(unit_id: str, at_ms: int, **ratings: float) -> pb.MegapackReading:
        return model_to_pb(MegapackReading.model_validate(megapack(unit_id, at_ms, **ratings)))

    first = reading(unit, start, rated_power_kw=1927.0, capacity_kwh=3854.0)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Names(amqp_prefix).telemetry)
        for body in (
            envelope(first),
            envelope(first, reading(unit, start + 1_000, rated_power_kw=1900.0)),
            envelope(reading(marker, start)),  # consumed after both: the barrier
        ):
            await exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key="megapack",
            )
    assert await wait_rows(db, "megapack_telemetry", marker, 1) == 1
    assert await wait_rows(db, "megapack_telemetry", unit, 2) == 2
    assert await ratings_of(db, unit) == (1900.0, 3854.0)
