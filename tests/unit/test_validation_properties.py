"""Property tests of the reading models and of `accept`: hostile input is refused, never a crash."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api_gateway.ingest import Kind, RequestError, Window, accept
from common.keys import parse_api_keys
from common.readings import MAX_EPOCH_MS, MAX_FUTURE_MS, TINY, EvReading, MegapackReading
from tests.support.readings import ev, megapack, published

NOW_MS = 1_795_000_000_000
CONTEXT = {"now_ms": NOW_MS, "oldest_ms": NOW_MS - 30 * 86_400_000}
WINDOW = Window(max_readings=50, now_us=NOW_MS * 1000, retention_days=30)
KEY, SCOPED = parse_api_keys("sim:secret-for-props,north:north-secret:site=SITE-01")
BOUNDS: dict[type[Any], dict[str, tuple[float, float]]] = {
    MegapackReading: {
        "soc_percent": (0, 100), "soh_percent": (0, 100), "power_kw": (-10_000, 10_000),
        "voltage_v": (0, 2_000), "current_a": (-20_000, 20_000), "temperature_c": (-60, 150),
        "rated_power_kw": (1, 10_000), "capacity_kwh": (1, 20_000),
    },
    EvReading: {
        "battery_soc_percent": (0, 100), "battery_temp_c": (-60, 150), "latitude": (-90, 90),
        "longitude": (-180, 180), "speed_kmh": (0, 400), "charge_power_kw": (-500, 1_000),
        "tire_pressure_psi": (0, 150), "odometer_km": (0, 10_000_000),
    },
}  # fmt: skip
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid(model: type[Any], **fields: Any) -> dict[str, Any]:
    base = megapack("MP-0001", NOW_MS) if model is MegapackReading else ev("EV-0001", NOW_MS)
    return {**base, **fields}


def _fields() -> st.SearchStrategy[tuple[type[Any], str]]:
    return st.sampled_from([(model, name) for model, names in BOUNDS.items() for name in names])


@FAST
@given(target=_fields(), data=st.data())
def test_numbers_inside_bounds_are_kept_exactly(target: tuple[type[Any], str], data: Any) -> None:
    model, name = target
    low, high = BOUNDS[model][name]
    value = data.draw(st.floats(min_value=low, max_value=high, allow_nan=False))
    reading = model.model_validate(_valid(model, **{name: value}), context=CONTEXT)
    # magnitudes under TINY are zero for any instrument and are stored as 0 (see readings.py)
    assert getattr(reading, name) == (0.0 if abs(value) < TINY else value)


@FAST
@given(target=_fields(), data=st.data())
def test_numbers_outside_bounds_nan_and_inf_are_refused(
    target: tuple[type[Any], str], data: Any
) -> None:
    model, name = target
    low, high = BOUNDS[model][name]
    value = data.draw(
        (
            st.floats(max_value=low, exclude_max=True) | st.floats(min_value=high, exclude_min=True)
        ).filter(lambda v: not abs(v) < TINY)  # a tiny magnitude is zero, which may be in bounds
        | st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308])
    )
    with pytest.raises(ValidationError) as error:
        model.model_validate(_valid(model, **{name: value}), context=CONTEXT)
    assert any(item["loc"] == (name,) for item in error.value.errors())


@FAST
@given(unit_id=st.text(max_size=80))
def test_ids_follow_the_pattern_whatever_the_unicode(unit_id: str) -> None:
    ascii_ok = unit_id.isascii() and unit_id[:1].isalnum()
    expected = ascii_ok and len(unit_id) <= 64 and all(c.isalnum() or c in "_.-" for c in unit_id)
    try:
        MegapackReading.model_validate(_valid(MegapackReading, unit_id=unit_id), context=CONTEXT)
    except ValidationError:
        assert not expected
    else:
        assert expected


@FAST
@given(moment=st.datetimes(timezones=st.timezones(), allow_imaginary=False))
def test_rfc3339_timestamps_keep_their_instant(moment: datetime) -> None:
    epoch_ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    stamp = moment.isoformat()
    try:
        reading = MegapackReading.model_validate(_valid(MegapackReading, timestamp=stamp))
    except ValidationError:
        assert not 0 <= epoch_ms <= MAX_EPOCH_MS
    else:
        assert reading.timestamp == epoch_ms


@pytest.mark.parametrize(
    ("timestamp", "accepted"),
    [
        (NOW_MS + MAX_FUTURE_MS, True),
        (NOW_MS + MAX_FUTURE_MS + 1, False),
        (CONTEXT["oldest_ms"], True),
        (CONTEXT["oldest_ms"] - 1, False),
        (-1, False),
        (MAX_EPOCH_MS + 1, False),
        (True, False),
        (float(NOW_MS), False),
        ("2026-11-21T10:00:00", False),  # no offset
        ("yesterday", False),
    ],
)
def test_timestamp_edges(timestamp: object, accepted: bool) -> None:
    try:
        MegapackReading.model_validate(
            _valid(MegapackReading, timestamp=timestamp), context=CONTEXT
        )
    except ValidationError:
        assert not accepted
    else:
        assert accepted


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _refusal(kind: Kind, body: bytes, content_type: str | None) -> int:
    """The status `accept` refuses with, or 202 (checking what it accepted)."""
    try:
        accepted = accept(kind=kind, body=body, content_type=content_type, key=KEY, window=WINDOW)
    except RequestError as error:
        return error.status
    assert len(published(accepted.envelope)[kind]) == accepted.readings >= 1
    return 202


@FAST
@given(kind=st.sampled_from(["megapack", "ev"]), document=_JSON)
def test_any_json_document_is_accepted_or_refused_cleanly(kind: Kind, document: Any) -> None:
    body = json.dumps(document).encode()  # NaN, Infinity and huge integers included
    assert _refusal(kind, body, None) in (202, 400, 413, 422)


@FAST
@given(kind=st.sampled_from(["megapack", "ev"]), data=st.data(), value=_JSON)
def test_a_reading_with_one_hostile_field_is_refused_cleanly(
    kind: Kind, data: Any, value: Any
) -> None:
    model = MegapackReading if kind == "megapack" else EvReading
    target = data.draw(st.sampled_from(list(_valid(model))) | st.text(max_size=20))
    body = json.dumps({"readings": [_valid(model, **{target: value})]}).encode()
    assert _refusal(kind, body, "application/json; charset=utf-8") in (202, 400, 422)


@FAST
@given(kind=st.sampled_from(["megapack", "ev"]), body=st.binary(max_size=300))
def test_any_protobuf_body_is_accepted_or_refused_cleanly(kind: Kind, body: bytes) -> None:
    assert _refusal(kind, body, "application/x-protobuf") in (202, 400, 413, 422)


@FAST
@given(count=st.integers(1, 50), bad=st.data())
def test_one_bad_reading_refuses_the_whole_request_and_names_its_index(
    count: int, bad: Any
) -> None:
    readings = [megapack(f"MP-{i:04d}", NOW_MS - i) for i in range(count)]
    index = bad.draw(st.integers(0, count - 1))
    readings[index]["soc_percent"] = bad.draw(st.sampled_from([-0.1, 100.01, "55", None]))
    body = orjson.dumps({"readings": readings})
    with pytest.raises(RequestError) as error:
        accept(kind="megapack", body=body, content_type=None, key=KEY, window=WINDOW)
    assert error.value.status == 422
    assert [item["index"] for item in error.value.detail] == [index]  # type: ignore[attr-defined]


@FAST
@given(count=st.integers(1, 50), site=st.sampled_from(["SITE-01", "SITE-02"]))
def test_valid_batches_are_accepted_whole_and_scoped_keys_stay_in_scope(
    count: int, site: str
) -> None:
    readings = [megapack(f"MP-{i:04d}", NOW_MS - i, site_id=site) for i in range(count)]
    body = orjson.dumps({"readings": readings})
    accepted = accept(kind="megapack", body=body, content_type=None, key=KEY, window=WINDOW)
    rows = published(accepted.envelope)["megapack"]
    assert [r["unit_id"] for r in rows] == [r["unit_id"] for r in readings]
    if site == "SITE-01":
        assert accept(kind="megapack", body=body, content_type=None, key=SCOPED, window=WINDOW)
    else:
        with pytest.raises(RequestError) as error:
            accept(kind="megapack", body=body, content_type=None, key=SCOPED, window=WINDOW)
        assert error.value.status == 403
