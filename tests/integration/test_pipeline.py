"""Telemetry from HTTP through RabbitMQ into PostgreSQL: N accepted -> N rows, exactly once."""

from __future__ import annotations

import asyncio

import aio_pika
import asyncpg
import httpx

from common.readings import EvReading, MegapackReading
from common.topology import Names
from proto.megapack.v1 import telemetry_pb2 as pb
from tests.support.barriers import metric, wait_metric
from tests.support.readings import count_rows, ev, megapack, model_to_pb, now_ms, unique, wait_rows
from tests.support.stack import FLEET_SECRET, SCOPED_SECRET, Service

PROTOBUF = {"Content-Type": "application/x-protobuf"}
DUPLICATES = "ingest_readings_duplicate_total"


async def test_single_json_megapack_reading_lands_once(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = unique("MP")
    response = await client.post("/v1/telemetry/megapack", json=megapack(unit, now_ms()))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    assert await wait_rows(db, "megapack_telemetry", unit, 1) == 1
    row = await db.fetchrow("SELECT * FROM megapack_telemetry WHERE unit_id = $1", unit)
    assert row is not None
    assert row["soc_percent"] == 55.5
    assert row["state"] == "CHARGING"
    assert row["received_at"] <= row["stored_at"]
    unit_row = await db.fetchrow("SELECT * FROM units WHERE unit_id = $1", unit)
    assert unit_row is not None
    assert unit_row["kind"] == "megapack"
    assert unit_row["last_state"] == "CHARGING"


async def test_json_batches_of_both_kinds_land_in_full(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit, vehicle = unique("MPB"), unique("EVB")
    start = now_ms() - 60_000
    mp = [megapack(f"{unit}-{i % 7}", start + i) for i in range(500)]
    evs = [ev(f"{vehicle}-{i % 5}", start + i) for i in range(300)]
    first = await client.post("/v1/telemetry/megapack", json={"readings": mp})
    second = await client.post("/v1/telemetry/ev", json={"readings": evs})
    assert (first.status_code, second.status_code) == (202, 202)
    assert await wait_rows(db, "megapack_telemetry", unit, 500) == 500
    assert await wait_rows(db, "ev_telemetry", vehicle, 300) == 300
    assert await db.fetchval("SELECT count(*) FROM units WHERE unit_id LIKE $1", unit + "%") == 7


async def test_rfc3339_timestamps_keep_their_instant(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = unique("MPT")
    response = await client.post(
        "/v1/telemetry/megapack", json=megapack(unit, "2026-11-21T10:00:00.250+02:00")
    )
    assert response.status_code == 202, response.text
    await wait_rows(db, "megapack_telemetry", unit, 1)
    stored = await db.fetchval(
        "SELECT extract(epoch FROM time) * 1000 FROM megapack_telemetry WHERE unit_id = $1", unit
    )
    assert int(stored) == 1_795_248_000_250  # 2026-11-21T08:00:00.250Z


async def test_protobuf_batches_of_both_kinds_land_in_full(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit, vehicle = unique("MPP"), unique("EVP")
    start = now_ms() - 30_000
    batch = pb.TelemetryBatch(
        megapack=[
            model_to_pb(MegapackReading.model_validate(megapack(f"{unit}-{i % 3}", start + i)))
            for i in range(1000)
        ]
    )
    ev_batch = pb.TelemetryBatch(
        ev=[model_to_pb(EvReading.model_validate(ev(vehicle, start + i))) for i in range(200)]
    )
    first = await client.post(
        "/v1/telemetry/megapack", content=batch.SerializeToString(), headers=PROTOBUF
    )
    second = await client.post(
        "/v1/telemetry/ev", content=ev_batch.SerializeToString(), headers=PROTOBUF
    )
    assert (first.status_code, second.status_code) == (202, 202), first.text + second.text
    assert first.json()["accepted"] == 1000
    assert await wait_rows(db, "megapack_telemetry", unit, 1000) == 1000
    assert await wait_rows(db, "ev_telemetry", vehicle, 200) == 200
    soh = await db.fetchval(
        "SELECT soh_percent FROM megapack_telemetry WHERE unit_id LIKE $1 LIMIT 1", unit + "%"
    )
    assert soh == 98.2


async def test_concurrent_requests_are_all_stored(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = unique("MPC")
    start = now_ms() - 10_000
    responses = await asyncio.gather(
        *(
            client.post("/v1/telemetry/megapack", json=megapack(f"{unit}-{i}", start + i))
            for i in range(200)
        )
    )
    assert {r.status_code for r in responses} == {202}
    assert await wait_rows(db, "megapack_telemetry", unit, 200) == 200


async def test_same_batch_delivered_twice_makes_no_second_row(
    client: httpx.AsyncClient, db: asyncpg.Connection, amqp_url: str, amqp_prefix: str,
    ingestion: Service,
) -> None:  # fmt: skip
    unit = unique("MPD")
    start = now_ms()
    readings = [MegapackReading.model_validate(megapack(unit, start + i)) for i in range(50)]
    envelope = pb.TelemetryEnvelope(
        batches=[
            pb.TelemetryBatch(
                batch_id="dup", received_at_us=start * 1000, key_id="sim",
                megapack=[model_to_pb(r) for r in readings],
            )
        ]
    ).SerializeToString()  # fmt: skip
    metrics = f"{ingestion.url}/metrics"
    duplicates_before = await metric(metrics, DUPLICATES)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Names(amqp_prefix).telemetry)
        for _ in range(2):
            await exchange.publish(
                aio_pika.Message(envelope, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key="megapack",
            )
    assert await wait_rows(db, "megapack_telemetry", unit, 50) == 50
    # The barrier: the consumer has offered the second copy's 50 readings and found each stored.
    await wait_metric(metrics, DUPLICATES, duplicates_before + 50)
    assert await count_rows(db, "megapack_telemetry", unit) == 50


async def test_scoped_keys_send_within_their_scope(
    gateway: Service, db: asyncpg.Connection
) -> None:
    unit, vehicle = unique("MPS"), unique("EVS")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as http:
        site = await http.post(
            "/v1/telemetry/megapack",
            json=megapack(unit, now_ms(), site_id="SITE-01"),
            headers={"X-API-Key": SCOPED_SECRET},
        )
        fleet = await http.post(
            "/v1/telemetry/ev",
            json=ev(vehicle, now_ms(), fleet_id="FLEET-A"),
            headers={"X-API-Key": FLEET_SECRET},
        )
    assert (site.status_code, fleet.status_code) == (202, 202)
    assert await wait_rows(db, "megapack_telemetry", unit, 1) == 1
    assert await wait_rows(db, "ev_telemetry", vehicle, 1) == 1


async def test_a_tiny_value_cannot_break_queries_over_its_row(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = unique("MPTINY")
    response = await client.post(
        "/v1/telemetry/megapack", json=megapack(unit, now_ms(), soc_percent=1e-300)
    )
    assert response.status_code == 202, response.text
    assert await wait_rows(db, "megapack_telemetry", unit, 1) == 1
    # avg() squares its inputs: a stored 1e-300 would raise "value out of range: underflow"
    average = await db.fetchval(
        "SELECT avg(soc_percent / 100 * 3854) FROM megapack_telemetry WHERE unit_id = $1", unit
    )
    assert average == 0.0
