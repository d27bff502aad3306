"""Request bodies for the load generator, built once and stamped per request.

Every request must carry new (unit, time) pairs or the database would drop them as
redeliveries, yet building 1,000 protobuf messages per request would make the load generator
the bottleneck. So a body is a template whose readings differ by unit id and share one
timestamp slot, and each request fills that slot with the next millisecond: one `join`.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson

from api_gateway.ingest import Window, accept
from common.keys import ApiKey
from proto.megapack.v1 import telemetry_pb2 as pb

Encoding = Literal["json", "protobuf"]
_SENTINEL_MS = 1_111_111_111_111  # 13 digits, like every epoch-ms timestamp until 2286
_TIMESTAMP_TAG = b"\x18"  # MegapackReading.timestamp_ms: field 3, varint
_READING_TAG = b"\x22"  # TelemetryBatch.megapack: field 4, length-delimited


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def reading_fields(unit_id: str, index: int) -> dict[str, Any]:
    """A plausible Megapack reading without its timestamp."""
    return {
        "unit_id": unit_id,
        "site_id": f"SITE-{index % 50 + 1:02d}",
        "soc_percent": 40.0 + index % 50,
        "soh_percent": 97.5,
        "power_kw": -250.0 + index % 500,
        "voltage_v": 480.0,
        "current_a": -300.5,
        "temperature_c": 24.5,
        "state": "CHARGING",
        "fault_codes": [],
        "rated_power_kw": 1927.0,  # as the simulator's readings carry them
        "capacity_kwh": 3854.0,
    }


class BodyMaker:
    """Bodies of `readings` Megapack readings for distinct units; each call is one ms later."""

    def __init__(
        self, *, tag: str, readings: int, encoding: Encoding, start_ms: int | None = None
    ) -> None:
        self.readings = readings
        self.encoding = encoding
        self.content_type = "application/json" if encoding == "json" else "application/x-protobuf"
        # Starting in the past leaves room for millions of requests before "5 minutes ahead".
        self._next_ms = (
            start_ms if start_ms is not None else time.time_ns() // 1_000_000 - 1_800_000
        )
        units = [reading_fields(f"{tag}-{i:05d}", i) for i in range(readings)]
        if encoding == "json":
            document: Any = (
                {**units[0], "timestamp": _SENTINEL_MS}
                if readings == 1
                else {"readings": [{**u, "timestamp": _SENTINEL_MS} for u in units]}
            )
            self._parts = orjson.dumps(document).split(str(_SENTINEL_MS).encode())
        else:
            self._parts = self._protobuf_parts(units)

    def _protobuf_parts(self, units: list[dict[str, Any]]) -> list[bytes]:
        # A field repeated in a message keeps its last value, so each reading is its fields
        # followed by the timestamp; every reading then has the same length.
        stamp_len = len(_TIMESTAMP_TAG + varint(self._next_ms))
        parts = [b""]
        for fields in units:
            message = pb.MegapackReading(
                **{k: v for k, v in fields.items() if k != "state"},
                state=pb.UnitState.Value("UNIT_STATE_" + fields["state"]),
            ).SerializeToString()
            parts[-1] += _READING_TAG + varint(len(message) + stamp_len) + message
            parts.append(b"")
        return parts

    def next(self) -> bytes:
        """The next body: the same units, one millisecond later."""
        stamp_ms, self._next_ms = self._next_ms, self._next_ms + 1
        if self.encoding == "json":
            return str(stamp_ms).encode().join(self._parts)
        return (_TIMESTAMP_TAG + varint(stamp_ms)).join(self._parts)

    def envelope(self, *, received_at_us: int) -> bytes:
        """The next body as the gateway publishes it: its own `accept` makes the envelope."""
        window = Window(max_readings=self.readings, now_us=received_at_us, retention_days=36_500)
        key = ApiKey("bench", b"")
        body, content_type = self.next(), self.content_type
        return accept(
            kind="megapack", body=body, content_type=content_type, key=key, window=window
        ).envelope
