"""Request parsing and validation of the gateway, without a network."""

from __future__ import annotations

import orjson
import pytest

from api_gateway.ingest import RequestError, Window, accept
from common.codec import PG_EPOCH_MS
from common.keys import parse_api_keys
from common.readings import EvReading, MegapackReading
from proto.megapack.v1 import telemetry_pb2 as pb
from tests.support.readings import ev, megapack, model_to_pb, now_ms, published

KEYS = parse_api_keys("sim:dev-secret-1,north:k-9f2abcd:site=SITE-01")


def _window(max_readings: int = 100) -> Window:
    return Window(max_readings=max_readings, now_us=now_ms() * 1000, retention_days=30)


def test_json_batch_becomes_one_envelope_with_metadata() -> None:
    body = orjson.dumps({"readings": [megapack("MP-1", now_ms()), megapack("MP-2", now_ms())]})
    accepted = accept(
        kind="megapack",
        body=body,
        content_type="application/json; charset=utf-8",
        key=KEYS[0],
        window=_window(),
    )
    envelope = pb.TelemetryEnvelope.FromString(accepted.envelope)
    (batch,) = envelope.batches
    assert accepted.readings == 2
    assert batch.key_id == "sim"
    assert batch.batch_id == accepted.batch_id
    rows = published(accepted.envelope)["megapack"]
    assert [r["unit_id"] for r in rows] == ["MP-1", "MP-2"]
    assert rows[0]["state"] == "CHARGING"
    assert rows[0]["soh_percent"] == 98.2
    assert rows[0]["received_at"] == batch.received_at_us - PG_EPOCH_MS * 1000


def test_protobuf_and_json_give_the_same_readings() -> None:
    ts = now_ms()
    from_json = accept(
        kind="ev",
        body=orjson.dumps(ev("EV-1", ts)),
        content_type=None,
        key=KEYS[0],
        window=_window(),
    )
    request = pb.TelemetryBatch(ev=[model_to_pb(EvReading.model_validate(ev("EV-1", ts)))])
    from_pb = accept(
        kind="ev",
        body=request.SerializeToString(),
        content_type="application/x-protobuf",
        key=KEYS[0],
        window=_window(),
    )
    from_json_rows, from_pb_rows = published(from_json.envelope), published(from_pb.envelope)
    for row in from_json_rows["ev"] + from_pb_rows["ev"]:
        del row["received_at"]
    assert from_pb_rows == from_json_rows
    assert from_pb_rows["ev"][0]["fleet_id"] == "FLEET-A"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{", "application/json", 400),
        (b"\x0a\x05", "application/x-protobuf", 400),
        (b"{}", "text/csv", 415),
        (orjson.dumps({"readings": [megapack("MP-1", now_ms())] * 3}), "application/json", 413),
        (orjson.dumps(megapack("MP-1", now_ms(), soc_percent=101)), "application/json", 422),
    ],
)
def test_refusals(body: bytes, content_type: str, status: int) -> None:
    with pytest.raises(RequestError) as error:
        accept(
            kind="megapack", body=body, content_type=content_type, key=KEYS[0], window=_window(2)
        )
    assert error.value.status == status


def test_protobuf_zero_state_is_refused_as_missing() -> None:
    request = pb.TelemetryBatch(
        megapack=[pb.MegapackReading(unit_id="MP-1", site_id="S", timestamp_ms=now_ms())]
    )
    with pytest.raises(RequestError) as error:
        accept(
            kind="megapack",
            body=request.SerializeToString(),
            content_type="application/x-protobuf",
            key=KEYS[0],
            window=_window(),
        )
    assert error.value.status == 422
    assert any(e["loc"] == ["state"] for e in error.value.detail)  # type: ignore[attr-defined]


def test_scoped_key_refused_outside_its_site() -> None:
    body = orjson.dumps(megapack("MP-1", now_ms(), site_id="SITE-02"))
    with pytest.raises(RequestError) as error:
        accept(kind="megapack", body=body, content_type=None, key=KEYS[1], window=_window())
    assert error.value.status == 403


@pytest.mark.parametrize("content_type", ["application/json", "application/x-protobuf"])
def test_tiny_magnitudes_are_stored_as_zero(content_type: str) -> None:
    reading = megapack("MP-1", now_ms(), soc_percent=5e-324, power_kw=-1e-200, current_a=2.5)
    if content_type == "application/json":
        body = orjson.dumps(reading)
    else:
        message = model_to_pb(MegapackReading.model_validate({**reading, "soc_percent": 1.0}))
        message.soc_percent, message.power_kw = 5e-324, -1e-200
        body = pb.TelemetryBatch(megapack=[message]).SerializeToString()
    accepted = accept(
        kind="megapack", body=body, content_type=content_type, key=KEYS[0], window=_window()
    )
    stored = published(accepted.envelope)["megapack"][0]
    assert (stored["soc_percent"], stored["power_kw"], stored["current_a"]) == (0.0, 0.0, 2.5)


def test_the_gateways_own_columns_are_refused_from_a_device() -> None:
    request = pb.TelemetryBatch(megapack_columns=pb.MegapackColumns(unit_id=["MP-1"]))
    request.megapack.append(model_to_pb(MegapackReading.model_validate(megapack("MP-1", now_ms()))))
    with pytest.raises(RequestError) as error:
        accept(
            kind="megapack",
            body=request.SerializeToString(),
            content_type="application/x-protobuf",
            key=KEYS[0],
            window=_window(),
        )
    assert error.value.status == 422
    assert "gateway only" in str(error.value.detail)
