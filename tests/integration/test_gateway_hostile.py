"""Hostile input: the right 4xx, never a 500, and nothing published.

These requests go to a gateway of its own prefix with no consumer, so the test can prove
that its ingest queue stays empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import httpx
import orjson
import pytest

from common.topology import Names
from proto.megapack.v1 import telemetry_pb2 as pb
from tests.support.readings import ev, megapack, now_ms
from tests.support.stack import DEVICE_SECRET, SCOPED_SECRET, Service, free_port

MEGAPACK = "/v1/telemetry/megapack"
EV = "/v1/telemetry/ev"


@pytest.fixture(scope="module")
def hostile_prefix(amqp_prefix: str) -> str:
    return f"{amqp_prefix}hostile."


@pytest.fixture(scope="module")
def quiet_gateway(stack_env: dict[str, str], hostile_prefix: str) -> Iterator[Service]:
    port = free_port()
    env = {**stack_env, "AMQP_PREFIX": hostile_prefix, "MAX_BATCH_READINGS": "100"}
    service = Service("api_gateway", env, "--port", str(port), port=port).start().wait_ready()
    yield service
    service.stop()


@pytest.fixture
async def http(quiet_gateway: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=quiet_gateway.url, headers={"X-API-Key": DEVICE_SECRET}, timeout=30
    ) as client:
        yield client


def _raw(body: str) -> dict[str, Any]:
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


def _one(**fields: Any) -> dict[str, Any]:
    return {"json": megapack("MP-H1", now_ms(), **fields)}


HOUR_MS = 3_600_000
CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("nan", MEGAPACK, _raw(orjson.dumps(megapack("MP-1", now_ms())).decode().replace("55.5", "NaN")), 400),  # noqa: E501
    ("nan_literal", MEGAPACK, _raw('{"unit_id": "MP-1", "soc_percent": NaN}'), 400),
    ("infinity", MEGAPACK, _raw('{"unit_id": "MP-1", "soc_percent": Infinity}'), 400),
    ("huge_number", MEGAPACK, _raw('{"unit_id": "MP-1", "soc_percent": 1e400}'), 400),
    ("not_json", MEGAPACK, _raw("{unit_id: MP-1"), 400),
    ("json_array", MEGAPACK, _raw("[1, 2]"), 422),
    ("wrong_type", MEGAPACK, _one(soc_percent="55"), 422),
    ("bool_as_number", MEGAPACK, _one(power_kw=True), 422),
    ("soc_out_of_range", MEGAPACK, _one(soc_percent=100.5), 422),
    ("unknown_field", MEGAPACK, _one(colour="red"), 422),
    ("unknown_state", MEGAPACK, _one(state="EXPLODING"), 422),
    ("hour_ahead", MEGAPACK, {"json": megapack("MP-H1", now_ms() + HOUR_MS)}, 422),
    ("years_old", MEGAPACK, {"json": megapack("MP-H1", "2019-01-01T00:00:00Z")}, 422),
    ("naive_timestamp", MEGAPACK, {"json": megapack("MP-H1", "2026-11-22T00:00:00")}, 422),
    ("nul_in_id", MEGAPACK, {"json": megapack("MP\x00H1", now_ms())}, 422),
    ("quote_in_id", MEGAPACK, {"json": megapack("MP'; DROP TABLE units;--", now_ms())}, 422),
    ("long_id", MEGAPACK, {"json": megapack("M" * 200, now_ms())}, 422),
    ("empty_batch", MEGAPACK, {"json": {"readings": []}}, 422),
    ("extra_top_level", MEGAPACK, {"json": {"readings": [], "x": 1}}, 422),
    ("ev_on_megapack", MEGAPACK, {"json": ev("EV-H1", now_ms())}, 422),
    ("bad_latitude", EV, {"json": ev("EV-H1", now_ms(), latitude=91)}, 422),
    ("negative_speed", EV, {"json": ev("EV-H1", now_ms(), speed_kmh=-1)}, 422),
    ("invalid_protobuf", MEGAPACK, {"content": b"\xff\xff\xff\x0f", "headers": {"Content-Type": "application/x-protobuf"}}, 400),  # noqa: E501
    ("unsupported_type", MEGAPACK, {"content": b"a=b", "headers": {"Content-Type": "text/plain"}}, 415),  # noqa: E501
    ("over_batch_limit", MEGAPACK, {"json": {"readings": [megapack(f"MP-{i}", now_ms()) for i in range(101)]}}, 413),  # noqa: E501
    ("ten_megabytes", MEGAPACK, {"content": b"[" + b" " * 10_000_000 + b"]", "headers": {"Content-Type": "application/json"}}, 413),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "path", "request_kwargs", "status"), CASES, ids=[c[0] for c in CASES]
)
async def test_hostile_input_gets_the_right_4xx(
    http: httpx.AsyncClient, name: str, path: str, request_kwargs: dict[str, Any], status: int
) -> None:
    response = await http.post(path, **request_kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"], "the answer names the problem"


async def test_validation_errors_name_every_bad_field_with_its_index(
    http: httpx.AsyncClient,
) -> None:
    good = megapack("MP-OK", now_ms())
    bad = megapack("MP-BAD", now_ms(), soc_percent=-1, temperature_c="hot")
    response = await http.post(MEGAPACK, json={"readings": [good, good, bad]})
    assert response.status_code == 422
    errors = {(e["index"], e["loc"][0]) for e in response.json()["detail"]}
    assert errors == {(2, "soc_percent"), (2, "temperature_c")}


async def test_missing_fields_are_each_named(http: httpx.AsyncClient) -> None:
    response = await http.post(MEGAPACK, json={"unit_id": "MP-1", "site_id": "SITE-01"})
    assert response.status_code == 422
    missing = {e["loc"][0] for e in response.json()["detail"] if e["type"] == "missing"}
    assert {"timestamp", "soc_percent", "power_kw", "state"} <= missing


async def test_protobuf_with_readings_of_the_other_kind_is_refused(http: httpx.AsyncClient) -> None:
    batch = pb.TelemetryBatch(ev=[pb.EvReading(vehicle_id="EV-1")])
    response = await http.post(
        MEGAPACK,
        content=batch.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-API-Key": "not-a-key-at-all"}, 401), ({"X-API-Key": ""}, 401)],
)
async def test_keys_are_required(
    quiet_gateway: Service, headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(base_url=quiet_gateway.url) as anonymous:
        response = await anonymous.post(MEGAPACK, json=megapack("MP-1", now_ms()), headers=headers)
    assert response.status_code == status


async def test_scoped_key_cannot_send_another_sites_readings(quiet_gateway: Service) -> None:
    readings = [
        megapack("MP-1", now_ms(), site_id="SITE-01"),
        megapack("MP-2", now_ms(), site_id="SITE-02"),
    ]
    async with httpx.AsyncClient(
        base_url=quiet_gateway.url, headers={"X-API-Key": SCOPED_SECRET}
    ) as scoped:
        refused = await scoped.post(MEGAPACK, json={"readings": readings})
        ev_refused = await scoped.post(EV, json=ev("EV-1", now_ms()))
    assert refused.status_code == 403
    assert "reading 1" in refused.json()["detail"]
    assert ev_refused.status_code == 403


async def test_nothing_was_published(
    http: httpx.AsyncClient, quiet_gateway: Service, amqp_url: str, hostile_prefix: str
) -> None:
    """Every kind of refusal, sent here, leaves the ingest queue empty; an accepted reading
    shows in the same count."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        name = Names(hostile_prefix).ingest_queue
        await (await channel.declare_queue(name, passive=True)).purge()
        for case, path, request_kwargs, status in CASES:
            assert (await http.post(path, **request_kwargs)).status_code == status, case
        async with httpx.AsyncClient(base_url=quiet_gateway.url) as other:
            for key, body, status in (
                (None, megapack("MP-1", now_ms()), 401),
                ("not-a-key-at-all", megapack("MP-1", now_ms()), 401),
                (SCOPED_SECRET, megapack("MP-2", now_ms(), site_id="SITE-02"), 403),
            ):
                headers = {} if key is None else {"X-API-Key": key}
                refused = await other.post(MEGAPACK, json=body, headers=headers)
                assert refused.status_code == status, refused.text
        queue = await channel.declare_queue(name, passive=True)
        assert queue.declaration_result.message_count == 0
        # the same check sees a message once something valid is accepted
        accepted = await http.post(MEGAPACK, json=megapack("MP-H-OK", now_ms()))
        assert accepted.status_code == 202
        queue = await channel.declare_queue(name, passive=True)
        assert queue.declaration_result.message_count == 1
