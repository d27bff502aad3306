"""The bench's request bodies are valid telemetry, and its verdicts follow its figures."""

from __future__ import annotations

import time

import orjson

from api_gateway.ingest import Window, accept
from bench.bodies import BodyMaker, varint
from bench.load import percentile
from bench.report import judge
from common.codec import PG_EPOCH_MS, envelope_rows, message_to_dict
from common.keys import parse_api_keys
from db.telemetry import latest_per_unit
from proto.megapack.v1 import telemetry_pb2 as pb

KEY = parse_api_keys("bench:bench-secret")[0]


def _window() -> Window:
    return Window(max_readings=5000, now_us=time.time_ns() // 1000, retention_days=30)


def test_varint_matches_protobuf() -> None:
    assert varint(0) == b"\x00"
    for value in (1, 127, 128, 300, 1_795_322_603_846):
        encoded = pb.MegapackReading(timestamp_ms=value).SerializeToString()
        assert encoded == b"\x18" + varint(value)


def test_protobuf_bodies_pass_the_gateway_and_move_one_millisecond_per_request() -> None:
    maker = BodyMaker(tag="T", readings=3, encoding="protobuf")
    first, second = maker.next(), maker.next()
    accepted = accept(
        kind="megapack", body=first, content_type=maker.content_type, key=KEY, window=_window()
    )
    assert accepted.readings == 3
    a, b = pb.TelemetryBatch.FromString(first), pb.TelemetryBatch.FromString(second)
    assert [r.unit_id for r in a.megapack] == ["T-00000", "T-00001", "T-00002"]
    assert {r.timestamp_ms for r in b.megapack} == {a.megapack[0].timestamp_ms + 1}


def test_json_bodies_single_and_batched_pass_the_gateway() -> None:
    single = BodyMaker(tag="S", readings=1, encoding="json")
    batched = BodyMaker(tag="B", readings=100, encoding="json")
    body = single.next()
    assert "readings" not in orjson.loads(body)
    for maker, raw in ((single, body), (batched, batched.next())):
        accepted = accept(
            kind="megapack", body=raw, content_type=maker.content_type, key=KEY, window=_window()
        )
        assert accepted.readings == maker.readings


def test_envelopes_become_rows_with_postgres_epoch_instants() -> None:
    maker = BodyMaker(tag="E", readings=2, encoding="protobuf", start_ms=PG_EPOCH_MS + 5)
    envelope = pb.TelemetryEnvelope.FromString(maker.envelope(received_at_us=PG_EPOCH_MS * 1000))
    megapack, ev = envelope_rows([envelope])
    assert ev == []
    assert [row[0] for row in megapack] == ["E-00000", "E-00001"]
    assert {row[1] for row in megapack} == {5_000}  # microseconds after 2000-01-01
    assert {row[11] for row in megapack} == {0}


def test_message_to_dict_fills_proto3_zeros_and_names_enums() -> None:
    reading = pb.MegapackReading(unit_id="MP-0001", state=pb.UNIT_STATE_FAULT, fault_codes=["F1"])
    fields = message_to_dict(reading)
    assert fields["state"] == "FAULT"
    assert fields["soc_percent"] == 0.0
    assert fields["fault_codes"] == ["F1"]
    assert "soh_percent" not in fields
    assert message_to_dict(pb.MegapackReading())["state"] == ""
    assert message_to_dict(pb.MegapackReading(soh_percent=0.0))["soh_percent"] == 0.0


def test_latest_per_unit_keeps_the_newest_row_of_each_unit() -> None:
    rows = [("A", 1, "old"), ("B", 5, "b"), ("A", 3, "new"), ("A", 2, "older")]
    assert sorted(latest_per_unit(rows)) == [("A", 3, "new"), ("B", 5, "b")]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 99) == 0.0


def test_judge_marks_targets_met_missed_and_not_run() -> None:
    results = {
        "protobuf": {"landed_per_s": 120_000, "lost": 0},
        "json": {"landed_per_s": 40_000, "lost": 2},
        "lag": {"lag_ms": {"p99": 80.0}, "lost": 0},
    }
    verdicts = {row["target"]: row["met"] for row in judge(results)}
    assert verdicts["protobuf batched (1,000/request) readings/s"] is True
    assert verdicts["JSON batched (100/request) readings/s"] is False
    assert verdicts["lag p99 ms at 10,000 readings/s"] is True
    assert verdicts["ingestion drain over raw COPY"] is None
    assert verdicts["readings lost (rows != accepted)"] is False
