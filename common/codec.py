"""Conversions between validated readings, protobuf messages and database rows."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, overload

from google.protobuf.message import Message

from common.readings import EvReading, MegapackReading
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
# Enum numbers by the names the models use (UNSPECIFIED is none of them).
UNIT_STATE_NUMBERS = {name: number for number, name in _UNIT_STATE_NAMES.items() if name}
CHARGING_STATE_NUMBERS = {name: number for number, name in _CHARGING_NAMES.items() if name}


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


_MESSAGES: dict[str, tuple[type[Message], str, dict[str, int]]] = {
    "megapack": (pb.MegapackReading, "state", UNIT_STATE_NUMBERS),
    "ev": (pb.EvReading, "charging_state", CHARGING_STATE_NUMBERS),
}


def fields_to_pb(kind: str, fields: Mapping[str, Any], timestamp_ms: int) -> Message:
    """A valid reading in its JSON shape (absent or null optionals unset) as protobuf."""
    message, enum_field, numbers = _MESSAGES[kind]
    values = dict(fields)
    del values["timestamp"]
    values[enum_field] = numbers[values[enum_field]]
    return message(timestamp_ms=timestamp_ms, **values)


@overload
def model_to_pb(reading: MegapackReading) -> pb.MegapackReading: ...
@overload
def model_to_pb(reading: EvReading) -> pb.EvReading: ...
def model_to_pb(reading: MegapackReading | EvReading) -> Message:
    """A validated reading as protobuf."""
    kind = "megapack" if isinstance(reading, MegapackReading) else "ev"
    return fields_to_pb(kind, reading.model_dump(), reading.timestamp)


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
    return megapack, ev
