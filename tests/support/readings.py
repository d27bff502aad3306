"""Valid readings for tests, with fields to override."""

from __future__ import annotations

import time
import uuid
from typing import Any, overload

import asyncpg
from google.protobuf.message import Message

from common.codec import ENUM_NUMBERS, EV_COLUMNS, MEGAPACK_COLUMNS, envelope_rows
from common.readings import EvReading, MegapackReading
from proto.megapack.v1 import telemetry_pb2 as pb


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def unique(prefix: str) -> str:
    """A unit id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def megapack(unit_id: str, timestamp: int | str, **fields: Any) -> dict[str, Any]:
    reading: dict[str, Any] = {
        "unit_id": unit_id,
        "site_id": "SITE-01",
        "timestamp": timestamp,
        "soc_percent": 55.5,
        "soh_percent": 98.2,
        "power_kw": -250.0,
        "voltage_v": 480.0,
        "current_a": -300.7,
        "temperature_c": 24.5,
        "state": "CHARGING",
        "fault_codes": [],
    }
    reading.update(fields)
    return reading


def ev(vehicle_id: str, timestamp: int | str, **fields: Any) -> dict[str, Any]:
    reading: dict[str, Any] = {
        "vehicle_id": vehicle_id,
        "fleet_id": "FLEET-A",
        "timestamp": timestamp,
        "battery_soc_percent": 71.0,
        "battery_temp_c": 31.0,
        "latitude": 37.77,
        "longitude": -122.42,
        "speed_kmh": 42.0,
        "charging_state": "NOT_CHARGING",
        "charge_power_kw": 0.0,
        "tire_pressure_psi": 41.0,
        "odometer_km": 12345.6,
    }
    reading.update(fields)
    return reading


async def count_rows(db: asyncpg.Connection, table: str, id_prefix: str) -> int:
    """Rows of a telemetry table whose unit/vehicle id starts with `id_prefix`."""
    column = "unit_id" if table == "megapack_telemetry" else "vehicle_id"
    query = f"SELECT count(*) FROM {table} WHERE {column} LIKE $1"  # noqa: S608 (fixed names)
    return int(await db.fetchval(query, id_prefix + "%"))


async def wait_rows(
    db: asyncpg.Connection, table: str, id_prefix: str, expected: int, timeout_s: float = 20
) -> int:
    """Wait until `expected` rows are there (or time runs out); returns the final count."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    count = await count_rows(db, table, id_prefix)
    while count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        count = await count_rows(db, table, id_prefix)
    return count


def published(envelope: bytes) -> dict[str, list[dict[str, Any]]]:
    """The rows a consumer stores from a gateway's envelope, by kind, as column -> value."""
    megapack_rows, ev_rows = envelope_rows([pb.TelemetryEnvelope.FromString(envelope)])
    return {
        "megapack": [dict(zip(MEGAPACK_COLUMNS, row, strict=True)) for row in megapack_rows],
        "ev": [dict(zip(EV_COLUMNS, row, strict=True)) for row in ev_rows],
    }


@overload
def model_to_pb(reading: MegapackReading) -> pb.MegapackReading: ...
@overload
def model_to_pb(reading: EvReading) -> pb.EvReading: ...
def model_to_pb(reading: MegapackReading | EvReading) -> Message:
    """A validated reading as a device sends it in protobuf."""
    fields = reading.model_dump()
    del fields["timestamp"]
    message: type[Message] = pb.MegapackReading
    enum_field = "state"
    if isinstance(reading, EvReading):
        message, enum_field = pb.EvReading, "charging_state"
    fields[enum_field] = ENUM_NUMBERS[enum_field][fields[enum_field]]
    return message(timestamp_ms=reading.timestamp, **fields)
