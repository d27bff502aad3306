"""Conversions between validated readings, protobuf messages and database rows."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice, repeat
from math import isnan
from operator import mul, sub
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from proto.megapack.v1 import telemetry_pb2 as pb

UNIT_STATE_PREFIX = "UNIT_STATE_"
CHARGING_STATE_PREFIX = "CHARGING_STATE_"
_UNIT_STATE_NAMES = {
    v.number: v.name.removeprefix(UNIT_STATE_PREFIX) for v in pb.UnitState.DESCRIPTOR.values
}
_CHARGING_NAMES = {
    v.number: v.name.removeprefix(CHARGING_STATE_PREFIX) for v in pb.ChargingState.DESCRIPTOR.values
}
_UNIT_STATE_NAMES[0] = _CHARGING_NAMES[0] = ""  # UNSPECIFIED fails validation as an empty state
# Enum names as the models use them, and back, by field name (UNSPECIFIED is none of them).
ENUM_NAMES = {"state": _UNIT_STATE_NAMES, "charging_state": _CHARGING_NAMES}
ENUM_NUMBERS = {
    field: {name: number for number, name in names.items() if name}
    for field, names in ENUM_NAMES.items()
}


_PLAIN, _OPTIONAL, _REPEATED, _ENUM = range(4)
_ENUM_NAMES = {"UnitState": _UNIT_STATE_NAMES, "ChargingState": _CHARGING_NAMES}
Plan = tuple[tuple[str, str, int, dict[int, str]], ...]


@functools.cache
def _plan(descriptor: Any) -> Plan:
    """How to read each field of a message type: (attribute, JSON key, how, enum names)."""
    steps = []
    for field in descriptor.fields:
        key = "timestamp" if field.name == "timestamp_ms" else field.name
        if field.enum_type is not None:
            steps.append((field.name, key, _ENUM, _ENUM_NAMES.get(field.enum_type.name, {0: ""})))
        elif field.is_repeated:
            steps.append((field.name, key, _REPEATED, {}))
        elif field.has_presence:
            steps.append((field.name, key, _OPTIONAL, {}))
        else:
            steps.append((field.name, key, _PLAIN, {}))
    return tuple(steps)


def message_to_dict(message: Message) -> dict[str, Any]:
    """The fields a protobuf reading carries, in the JSON shape (unset optionals are absent).

    proto3 leaves zero-valued scalars unset; the JSON shape has them present (an unset enum
    is an empty state, which fails validation). One precomputed plan per message type keeps
    this at a few attribute reads per field: it runs for every reading the gateway receives.
    """
    fields: dict[str, Any] = {}
    for attribute, key, how, names in _plan(message.DESCRIPTOR):
        if how == _PLAIN:
            fields[key] = getattr(message, attribute)
        elif how == _OPTIONAL:
            if message.HasField(attribute):
                fields[key] = getattr(message, attribute)
        elif how == _ENUM:
            value = getattr(message, attribute)
            fields[key] = names.get(value, str(value))
        else:
            fields[key] = list(getattr(message, attribute))
    return fields


MegapackRow = tuple[Any, ...]
EvRow = tuple[Any, ...]

# Rows carry the telemetry tables' own columns, so they COPY straight into them. Instants are
# microseconds since PostgreSQL's epoch (2000-01-01 UTC), its binary timestamptz form: the store
# sends them without building a datetime per reading (see db.telemetry.prepare_staging).
MEGAPACK_COLUMNS = (
    "unit_id", "time", "site_id", "soc_percent", "soh_percent", "power_kw", "voltage_v",
    "current_a", "temperature_c", "state", "fault_codes", "received_at",
)  # fmt: skip
EV_COLUMNS = (
    "vehicle_id", "time", "fleet_id", "battery_soc_percent", "battery_temp_c", "latitude",
    "longitude", "speed_kmh", "charging_state", "charge_power_kw", "tire_pressure_psi",
    "odometer_km", "received_at",
)  # fmt: skip
PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z in Unix epoch milliseconds


def envelope_rows(
    envelopes: Iterable[pb.TelemetryEnvelope],
) -> tuple[list[MegapackRow], list[EvRow]]:
    """Flatten envelopes into table rows (columns as MEGAPACK_COLUMNS / EV_COLUMNS)."""
    megapack: list[MegapackRow] = []
    ev: list[EvRow] = []
    states, charging, shift = _UNIT_STATE_NAMES, _CHARGING_NAMES, PG_EPOCH_MS
    for envelope in envelopes:
        for batch in envelope.batches:
            received = batch.received_at_us - shift * 1000
            megapack.extend(
                (
                    r.unit_id, (r.timestamp_ms - shift) * 1000, r.site_id, r.soc_percent,
                    r.soh_percent if r.HasField("soh_percent") else None,
                    r.power_kw, r.voltage_v, r.current_a, r.temperature_c,
                    states[r.state], list(r.fault_codes), received,
                )
                for r in batch.megapack
            )  # fmt: skip
            ev.extend(
                (
                    r.vehicle_id, (r.timestamp_ms - shift) * 1000,
                    r.fleet_id if r.HasField("fleet_id") else None,
                    r.battery_soc_percent, r.battery_temp_c, r.latitude, r.longitude,
                    r.speed_kmh, charging[r.charging_state], r.charge_power_kw,
                    r.tire_pressure_psi if r.HasField("tire_pressure_psi") else None,
                    r.odometer_km if r.HasField("odometer_km") else None,
                    received,
                )
                for r in batch.ev
            )  # fmt: skip
            if batch.HasField("megapack_columns"):
                megapack.extend(_megapack_column_rows(batch.megapack_columns, received))
            if batch.HasField("ev_columns"):
                ev.extend(_ev_column_rows(batch.ev_columns, received))
    return megapack, ev


# A unit's own ratings, (rated_power_kw, capacity_kwh), either None when not reported. They
# are not telemetry columns (they change once in a unit's life): the consumer keeps the latest
# in `units`, so decoding hands them over per unit, not per reading.
Rating = tuple[float | None, float | None]
Ratings = dict[str, Rating]
RATING_COLUMNS = ("rated_power_kw", "capacity_kwh")


def envelope_ratings(envelopes: Iterable[pb.TelemetryEnvelope]) -> Ratings:
    """Each unit's ratings: per value, the last the unit reported in the envelopes."""
    ratings: Ratings = {}
    for envelope in envelopes:
        for batch in envelope.batches:
            for r in batch.megapack:
                rated = r.rated_power_kw if r.HasField("rated_power_kw") else None
                capacity = r.capacity_kwh if r.HasField("capacity_kwh") else None
                if rated is not None or capacity is not None:
                    _merge_one(ratings, r.unit_id, rated, capacity)
            if batch.HasField("megapack_columns"):
                _column_ratings(batch.megapack_columns, ratings)
    return ratings


def merge_ratings(into: Ratings, later: Ratings) -> None:
    """Fold later ratings into earlier ones: a value a later reading left out stays."""
    for unit, (rated, capacity) in later.items():
        if rated is None or capacity is None:
            _merge_one(into, unit, rated, capacity)
        else:
            into[unit] = (rated, capacity)


def _merge_one(into: Ratings, unit: str, rated: float | None, capacity: float | None) -> None:
    if rated is None or capacity is None:
        old_rated, old_capacity = into.get(unit, (None, None))
        rated = old_rated if rated is None else rated
        capacity = old_capacity if capacity is None else capacity
    into[unit] = (rated, capacity)


def _column_ratings(columns: pb.MegapackColumns, ratings: Ratings) -> None:
    if not columns.rated_power_kw:  # a gateway before the ratings
        return
    # Lists first: iterating a protobuf repeated field directly costs more than copying it.
    rated, capacity = list(columns.rated_power_kw), list(columns.capacity_kwh)
    units = list(columns.unit_id)
    if len(rated) != len(units) or len(capacity) != len(units):
        raise DecodeError("columns of unequal length")
    if not isnan(sum(rated) + sum(capacity)):  # every reading carries both: no Python per reading
        ratings.update(zip(units, zip(rated, capacity, strict=True), strict=True))
        return
    if all(map(isnan, rated)) and all(map(isnan, capacity)):
        return
    for unit, power, energy in zip(units, rated, capacity, strict=True):
        if not (isnan(power) and isnan(energy)):
            _merge_one(
                ratings, unit, None if isnan(power) else power, None if isnan(energy) else energy
            )


def _megapack_column_rows(columns: pb.MegapackColumns, received_us: int) -> Iterator[MegapackRow]:
    """Rows of a columnar batch, built by C-level iterators (no Python code per reading)."""
    c = _same_lengths(columns, sum(columns.fault_code_counts) == len(columns.fault_codes))
    return zip(
        c.unit_id, _pg_times(c.timestamp_ms), c.site_id, c.soc_percent,
        _nan_is_none(c.soh_percent), c.power_kw, c.voltage_v, c.current_a, c.temperature_c,
        map(_UNIT_STATE_NAMES.__getitem__, c.state),
        _code_lists(c.fault_codes, c.fault_code_counts), repeat(received_us),
        strict=False,  # `repeat` is endless; every other column has the same length
    )  # fmt: skip


def _ev_column_rows(columns: pb.EvColumns, received_us: int) -> Iterator[EvRow]:
    c = _same_lengths(columns, True)
    return zip(
        c.vehicle_id, _pg_times(c.timestamp_ms), [f or None for f in c.fleet_id],
        c.battery_soc_percent, c.battery_temp_c, c.latitude, c.longitude, c.speed_kmh,
        map(_CHARGING_NAMES.__getitem__, c.charging_state), c.charge_power_kw,
        _nan_is_none(c.tire_pressure_psi), _nan_is_none(c.odometer_km), repeat(received_us),
        strict=False,
    )  # fmt: skip


C = TypeVar("C", pb.MegapackColumns, pb.EvColumns)


def _same_lengths(columns: C, codes_add_up: bool) -> C:
    """The columns, if they describe whole readings; a message that does not is undecodable."""
    lengths = {
        len(getattr(columns, field.name))
        for field in columns.DESCRIPTOR.fields
        if field.name != "fault_codes"
        and not (field.name in RATING_COLUMNS and not getattr(columns, field.name))
    }  # rating columns may be empty: a gateway before them left them out
    if len(lengths) != 1 or not codes_add_up:
        raise DecodeError("columns of unequal length")
    return columns


def _pg_times(epoch_ms: Iterable[int]) -> Iterator[int]:
    """Epoch milliseconds as microseconds since 2000-01-01 (PostgreSQL's timestamptz)."""
    return map(sub, map(mul, epoch_ms, repeat(1000)), repeat(PG_EPOCH_MS * 1000))


def _nan_is_none(values: Sequence[float]) -> Sequence[float | None]:
    """An optional column: NaN marks a reading without the value."""
    if not isnan(sum(values)):
        return values
    return [None if isnan(value) else value for value in values]


def _code_lists(codes: Sequence[str], counts: Sequence[int]) -> Iterable[list[str]]:
    """Each reading's fault codes, from the flat column and the per-reading counts."""
    if not codes:
        return repeat([])  # read-only: the same empty list serves every row
    flat = iter(codes)
    return [list(islice(flat, count)) for count in counts]
