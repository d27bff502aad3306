"""Columns as the consumer decodes them: whole readings or nothing, ratings optional."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError

from api_gateway.columns import json_columns
from tests.unit.test_columns import NOW_MS, RULES, columns_envelope, rated_megapack, rows_of


@pytest.mark.parametrize("spoil", ["short column", "codes that do not add up", "short rating"])
def test_columns_that_do_not_describe_whole_readings_are_undecodable(spoil: str) -> None:
    readings = [rated_megapack(f"MP-{i}", NOW_MS - i) for i in range(3)]
    columns = json_columns(RULES["megapack"], readings)
    assert columns is not None
    envelope = columns_envelope("megapack", columns)
    assert len(rows_of(envelope)[0]) == 3  # whole, it decodes
    spoilt = envelope.batches[0].megapack_columns
    if spoil == "short column":
        del spoilt.power_kw[-1]
    elif spoil == "short rating":
        del spoilt.capacity_kwh[-1]
    else:
        spoilt.fault_codes.append("OVER_TEMP")
    with pytest.raises(DecodeError):
        rows_of(envelope)


def test_columns_of_a_gateway_before_the_ratings_decode_without_ratings() -> None:
    readings = [rated_megapack(f"MP-{i}", NOW_MS - i) for i in range(3)]
    readings[1]["capacity_kwh"] = None  # one reading without its capacity: the rest carry it
    columns = json_columns(RULES["megapack"], readings)
    assert columns is not None
    envelope = columns_envelope("megapack", columns)
    rows, _, ratings = rows_of(envelope)
    assert ratings == {"MP-0": (979.0, 3916.0), "MP-1": (979.0, None), "MP-2": (979.0, 3916.0)}
    older = envelope.batches[0].megapack_columns
    older.ClearField("rated_power_kw")
    older.ClearField("capacity_kwh")
    assert rows_of(envelope) == (rows, [], {})
