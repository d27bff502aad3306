"""The column checks against the models: what they pass, pydantic passes with the same values."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from api_gateway import ingest
from api_gateway.column_rules import rules_of
from api_gateway.columns import (
    columns_ok,
    fill_columns,
    json_columns,
    protobuf_columns,
)
from api_gateway.ingest import RequestError, Window, accept
from common.codec import (
    ENUM_NAMES,
    ENUM_NUMBERS,
    envelope_ratings,
    envelope_rows,
    message_to_dict,
)
from common.keys import parse_api_keys
from common.readings import TINY, EvReading, MegapackReading
from proto.megapack.v1 import telemetry_pb2 as pb
from tests.support.readings import ev, megapack, model_to_pb

NOW_MS = 1_795_000_000_000
OLDEST_MS = NOW_MS - 30 * 86_400_000
MODELS: dict[str, Any] = {"megapack": MegapackReading, "ev": EvReading}


def rated_megapack(unit_id: str, timestamp: int | str, **fields: Any) -> dict[str, Any]:
    """A valid reading that carries the unit's own ratings (optional fields)."""
    return megapack(unit_id, timestamp, rated_power_kw=979.0, capacity_kwh=3916.0, **fields)


VALID: dict[str, Callable[..., dict[str, Any]]] = {"megapack": rated_megapack, "ev": ev}
ADAPTERS = {kind: TypeAdapter(list[model]) for kind, model in MODELS.items()}  # type: ignore[valid-type]
RULES = {kind: rules_of(model) for kind, model in MODELS.items()}
MESSAGES: dict[str, Any] = {"megapack": pb.MegapackReading, "ev": pb.EvReading}


def json_ok(kind: str, readings: list[Any]) -> bool:
    columns = json_columns(RULES[kind], readings)
    window = {"now_ms": NOW_MS, "oldest_ms": OLDEST_MS}
    return columns is not None and columns_ok(RULES[kind], columns, **window, typed=False)


def protobuf_ok(kind: str, messages: list[Any]) -> bool:
    columns = protobuf_columns(RULES[kind], messages, enum_names=ENUM_NAMES)
    window = {"now_ms": NOW_MS, "oldest_ms": OLDEST_MS}
    return columns_ok(RULES[kind], columns, **window, typed=True)


def batch_of(field: str, value: Any) -> pb.TelemetryBatch:
    """A batch with one field set: readings (a list) or columns (a message)."""
    batch = pb.TelemetryBatch()
    target = getattr(batch, field)
    if isinstance(value, list):
        target.extend(value)
    else:
        target.CopyFrom(value)
    return batch


def columns_envelope(kind: str, columns: dict[str, list[Any]]) -> pb.TelemetryEnvelope:
    """Valid columns as the gateway publishes them."""
    batch = pb.TelemetryBatch()
    fill_columns(getattr(batch, f"{kind}_columns"), RULES[kind], columns, enum_numbers=ENUM_NUMBERS)
    return pb.TelemetryEnvelope(batches=[batch])


def models_envelope(kind: str, models: list[Any]) -> pb.TelemetryEnvelope:
    """Validated readings as a row-form envelope (what an earlier gateway published)."""
    batch = batch_of(kind, [model_to_pb(m) for m in models])
    return pb.TelemetryEnvelope(batches=[batch])


def rows_of(envelope: pb.TelemetryEnvelope) -> tuple[list[Any], list[Any], Any]:
    """What the consumer stores, without the receipt time, and the units' ratings."""
    megapack_rows, ev_rows = envelope_rows([envelope])
    ratings = envelope_ratings([envelope])
    return [r[:-1] for r in megapack_rows], [r[:-1] for r in ev_rows], ratings


KEY = parse_api_keys("sim:secret-for-columns")[0]
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values that sit on, just past or far from the edges, of every type JSON and Python can carry.
EDGY: st.SearchStrategy[Any] = st.sampled_from(
    [
        0, 0.0, -0.0, 1, -1, 50, 100, 100.0000001, -60, 150, 150.5, 400, 1000, 1000.5, -500.5,
        10_000, -10_000, 10_001, 20_000, -20_000.1, 10_000_000, 1e-101, -1e-300, TINY, 5e-324,
        math.nan, math.inf, -math.inf, 1e308, 10**30, True, False, None, "", "55", "MP-0001",
        "MP 1", "a\nb", "A" * 64, "A" * 65, "IDLE", "FAULT", "CHARGING", "COMPLETE", "bogus",
        [], ["OVER_TEMP"], ["bad code"], ["A"] * 33, ["A\nB"], {}, NOW_MS, NOW_MS + 300_001,
        OLDEST_MS - 1, -1, "2026-11-21T10:00:00Z", "2026-11-21T10:00:00", "1970-01-01T00:00:00Z",
    ]
)  # fmt: skip


def _validated(kind: str, readings: list[Any]) -> list[Any] | None:
    context: dict[str, Any] = {"now_ms": NOW_MS, "oldest_ms": OLDEST_MS}
    try:
        models = ADAPTERS[kind].validate_python(readings, context=context)
    except ValidationError:
        return None
    assert "flushed" not in context  # the column checks never pass a value pydantic would change
    return list(models)


@st.composite
def json_batches(draw: st.DrawFn) -> tuple[str, list[Any]]:
    kind = draw(st.sampled_from(["megapack", "ev"]))
    ids = [f"U-{i}" for i in range(draw(st.integers(1, 8)))]
    readings: list[Any] = [VALID[kind](unit, NOW_MS - i) for i, unit in enumerate(ids)]
    for _ in range(draw(st.integers(0, 3))):  # spoil some fields, drop some, add strangers
        reading = draw(st.sampled_from(readings))
        name = draw(st.sampled_from([*reading, "stranger"]))
        if draw(st.booleans()):
            reading[name] = draw(EDGY)
        else:
            reading.pop(name, None)
    return kind, readings


@EXAMPLES
@given(batch=json_batches())
def test_a_json_batch_the_columns_pass_is_one_the_models_pass_with_the_same_values(
    batch: tuple[str, list[Any]],
) -> None:
    kind, readings = batch
    if not json_ok(kind, readings):
        return  # not sure: the gateway asks pydantic
    models = _validated(kind, readings)
    assert models is not None, readings
    columns = json_columns(RULES[kind], readings)
    assert columns is not None
    assert rows_of(columns_envelope(kind, columns)) == rows_of(models_envelope(kind, models))


@given(kind=st.sampled_from(["megapack", "ev"]), count=st.integers(1, 50))
def test_valid_batches_pass_the_columns(kind: str, count: int) -> None:
    readings = [VALID[kind](f"U-{i}", NOW_MS - i) for i in range(count)]
    for reading in readings[::2]:  # optional fields absent or null
        for rule in RULES[kind]:
            if rule.nullable:
                reading[rule.name] = None
            elif rule.optional:
                del reading[rule.name]
    an_hour_east = timezone(timedelta(hours=1))
    readings[0]["timestamp"] = datetime.fromtimestamp(NOW_MS / 1000 - 60, an_hour_east).isoformat()
    assert json_ok(kind, readings)
    models = [MODELS[kind].model_validate(r) for r in readings]
    assert protobuf_ok(kind, [model_to_pb(m) for m in models])
    window = Window(max_readings=5000, now_us=NOW_MS * 1000, retention_days=30)
    request = batch_of(kind, [model_to_pb(m) for m in models])
    for body, content_type in [
        (orjson.dumps({"readings": readings}), "application/json"),
        (request.SerializeToString(), "application/x-protobuf"),
    ]:
        accepted = accept(kind=kind, body=body, content_type=content_type, key=KEY, window=window)  # type: ignore[arg-type]
        published = pb.TelemetryEnvelope.FromString(accepted.envelope)
        assert rows_of(published) == rows_of(models_envelope(kind, models))


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("megapack", "fault_codes", ["OVER_TEMP"] * 33),
        ("megapack", "fault_codes", None),
        ("megapack", "fault_codes", ["OVER_TEMP\nFAN"]),
        ("megapack", "state", None),
        ("megapack", "soc_percent", None),
        ("megapack", "soc_percent", True),
        ("megapack", "soh_percent", 1e-200),
        ("megapack", "site_id", "SITE-01\n"),
        ("ev", "vehicle_id", None),
        ("ev", "odometer_km", math.nan),
        ("ev", "fleet_id", ""),
        ("ev", "timestamp", NOW_MS + 300_001),
        ("ev", "timestamp", "2026-11-21T10:00:00"),
    ],
)
def test_each_rule_is_checked(kind: str, field: str, value: Any) -> None:
    readings = [VALID[kind](f"U-{i}", NOW_MS - i) for i in range(8)]
    readings[3][field] = value
    context = {"now_ms": NOW_MS, "oldest_ms": OLDEST_MS}
    try:
        ADAPTERS[kind].validate_python(readings, context=context)
    except ValidationError:
        pass
    else:
        assert "flushed" in context  # the models change it; the columns leave that to them
    assert not json_ok(kind, readings)


PB_EDGY: st.SearchStrategy[Any] = st.sampled_from(
    [0.0, -0.0, 1e-101, 5e-324, math.nan, math.inf, -math.inf, 100.5, -60.5, 1e7 + 1, 42.0]
)


@st.composite
def protobuf_batches(draw: st.DrawFn) -> tuple[str, list[Any]]:
    kind = draw(st.sampled_from(["megapack", "ev"]))
    count = draw(st.integers(1, 8))
    messages = [
        model_to_pb(MODELS[kind].model_validate(VALID[kind](f"U-{i}", NOW_MS)))
        for i in range(count)
    ]
    for _ in range(draw(st.integers(0, 3))):
        message = draw(st.sampled_from(messages))
        field = draw(st.sampled_from(list(MESSAGES[kind].DESCRIPTOR.fields)))
        if field.has_presence and draw(st.booleans()):
            message.ClearField(field.name)
        elif field.type == field.TYPE_DOUBLE:
            setattr(message, field.name, draw(PB_EDGY))
        elif field.type == field.TYPE_STRING and not field.is_repeated:
            setattr(message, field.name, draw(st.sampled_from(["", "a\nb", "é", "A" * 65, "X"])))
        elif field.type == field.TYPE_ENUM:
            setattr(message, field.name, draw(st.integers(0, 9)))
        elif field.name == "timestamp_ms":
            message.timestamp_ms = draw(st.sampled_from([-1, 0, OLDEST_MS - 1, NOW_MS + 300_001]))
        else:
            getattr(message, field.name).extend(
                draw(st.sampled_from([["OK"], ["bad code"], ["A"] * 33]))
            )
    return kind, messages


@EXAMPLES
@given(batch=protobuf_batches())
def test_a_protobuf_batch_the_columns_pass_is_one_the_models_pass(
    batch: tuple[str, list[Any]],
) -> None:
    kind, messages = batch
    if protobuf_ok(kind, messages):
        models = _validated(kind, [message_to_dict(m) for m in messages])
        assert models is not None
        columns = protobuf_columns(RULES[kind], messages, enum_names=ENUM_NAMES)
        assert rows_of(columns_envelope(kind, columns)) == rows_of(models_envelope(kind, models))


def test_valid_batches_never_reach_pydantic(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> Any:
        raise AssertionError("pydantic was asked")

    monkeypatch.setattr(ingest, "_validate", refuse)
    window = Window(max_readings=5000, now_us=NOW_MS * 1000, retention_days=30)
    readings = [rated_megapack(f"MP-{i}", NOW_MS - i) for i in range(ingest.COLUMNS_FROM)]
    readings[0].pop("rated_power_kw")  # optional: absent in one reading, present in the rest
    body = pb.TelemetryBatch(megapack=[model_to_pb(MegapackReading(**r)) for r in readings])
    for payload, content_type in [
        (pb.TelemetryBatch(megapack=body.megapack).SerializeToString(), "application/x-protobuf"),
        (orjson.dumps({"readings": readings}), "application/json"),
    ]:
        accepted = accept(
            kind="megapack", body=payload, content_type=content_type, key=KEY, window=window
        )
        assert accepted.readings == len(readings)
    readings[-1]["soc_percent"] = 101  # one bad value: pydantic decides, and names it
    monkeypatch.undo()
    with pytest.raises(RequestError) as error:
        accept(
            kind="megapack",
            body=orjson.dumps({"readings": readings}),
            content_type=None,
            key=KEY,
            window=window,
        )
    assert error.value.detail[0]["index"] == len(readings) - 1  # type: ignore[index]
