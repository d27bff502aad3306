"""Validation models of Megapack and EV readings: the single definition of a valid reading.

Physical bounds (also listed in docs/API.md) are wide enough for any real unit and narrow
enough to catch unit mix-ups and corrupt values. Timestamps become epoch milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
FAULT_CODE_PATTERN = r"^[A-Z0-9_]{1,64}$"
MAX_FUTURE_MS = 5 * 60 * 1000
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

UnitId = Annotated[str, Field(pattern=ID_PATTERN)]
FaultCode = Annotated[str, Field(pattern=FAULT_CODE_PATTERN)]
MegapackState = Literal[
    "IDLE", "CHARGING", "DISCHARGING", "STANDBY", "FAULT", "MAINTENANCE", "OFFLINE"
]
ChargingState = Literal["NOT_CHARGING", "CHARGING", "COMPLETE", "FAULT"]
MEGAPACK_STATES: tuple[str, ...] = get_args(MegapackState)
CHARGING_STATES: tuple[str, ...] = get_args(ChargingState)


TINY = 1e-100  # below this a measured magnitude is zero for any instrument
FLUSHED = "flushed"  # set in the validation context when a reading had a tiny value


def _flush_tiny_field(cls: type, value: float | None, info: ValidationInfo) -> float | None:
    """Store 0 for magnitudes under TINY (after the bounds are checked): PostgreSQL float8
    arithmetic (avg, products) raises 'value out of range: underflow' on them, which would
    break every query over the row."""
    if value is not None and value != 0 and -TINY < value < TINY:
        if isinstance(info.context, dict):
            info.context[FLUSHED] = True
        return 0.0
    return value


def timestamp_ms(value: object) -> int:
    """Epoch milliseconds of an RFC 3339 string with an offset or an epoch-ms integer."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be RFC 3339 with an offset, or epoch milliseconds") from None
        if parsed.tzinfo is None:
            raise ValueError("RFC 3339 timestamp needs an offset (e.g. Z or +02:00)")
        value = (parsed - _EPOCH) // timedelta(milliseconds=1)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be RFC 3339 with an offset, or epoch milliseconds")
    if not 0 <= value <= MAX_EPOCH_MS:
        raise ValueError("is outside the years 1970 to 9999")
    return value


def _number(low: float, high: float, *, optional: bool = False) -> object:
    if optional:
        return Field(default=None, ge=low, le=high, allow_inf_nan=False)
    return Field(ge=low, le=high, allow_inf_nan=False)


class ReadingBase(BaseModel):
    """Shared rules: no unknown fields, strict types, a timestamp inside the accepted window."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    timestamp: Annotated[
        int,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "description": "epoch milliseconds"},
                    {"type": "string", "format": "date-time", "description": "RFC 3339"},
                ]
            }
        ),
    ]

    @field_validator("timestamp", mode="before")
    @classmethod
    def _epoch_ms(cls, value: object, info: ValidationInfo) -> int:
        value = timestamp_ms(value)
        window = info.context or {}
        now_ms, oldest_ms = window.get("now_ms"), window.get("oldest_ms")
        if now_ms is not None and value > now_ms + MAX_FUTURE_MS:
            raise ValueError("is more than 5 minutes in the future")
        if oldest_ms is not None and value < oldest_ms:
            raise ValueError("is older than the retention window")
        return value


class MegapackReading(ReadingBase):
    """One Megapack report."""

    unit_id: UnitId
    site_id: UnitId
    soc_percent: float = _number(0, 100)  # type: ignore[assignment]
    soh_percent: float | None = _number(0, 100, optional=True)  # type: ignore[assignment]
    power_kw: float = _number(-10_000, 10_000)  # type: ignore[assignment]
    voltage_v: float = _number(0, 2_000)  # type: ignore[assignment]
    current_a: float = _number(-20_000, 20_000)  # type: ignore[assignment]
    temperature_c: float = _number(-60, 150)  # type: ignore[assignment]
    state: MegapackState
    fault_codes: list[FaultCode] = Field(default_factory=list, max_length=32)
    # The unit's own nameplate (optional; the `units` table keeps the latest reported). A
    # Megapack 2 XL is 979-1,927 kW and 3,854-3,916 kWh; the bounds leave room for any unit
    # and stop a W/kW or Wh/kWh mix-up. `power_kw` is not checked against the rating here: a
    # unit briefly over its nameplate is a fact to record, not a bad reading.
    rated_power_kw: float | None = _number(1, 10_000, optional=True)  # type: ignore[assignment]
    capacity_kwh: float | None = _number(1, 20_000, optional=True)  # type: ignore[assignment]

    _flush = field_validator(
        "soc_percent", "soh_percent", "power_kw", "voltage_v", "current_a", "temperature_c"
    )(_flush_tiny_field)


class EvReading(ReadingBase):
    """One electric-vehicle report."""

    vehicle_id: UnitId
    fleet_id: UnitId | None = None
    battery_soc_percent: float = _number(0, 100)  # type: ignore[assignment]
    battery_temp_c: float = _number(-60, 150)  # type: ignore[assignment]
    latitude: float = _number(-90, 90)  # type: ignore[assignment]
    longitude: float = _number(-180, 180)  # type: ignore[assignment]
    speed_kmh: float = _number(0, 400)  # type: ignore[assignment]
    charging_state: ChargingState
    charge_power_kw: float = _number(-500, 1_000)  # type: ignore[assignment]
    tire_pressure_psi: float | None = _number(0, 150, optional=True)  # type: ignore[assignment]
    odometer_km: float | None = _number(0, 10_000_000, optional=True)  # type: ignore[assignment]

    _flush = field_validator(
        "battery_soc_percent", "battery_temp_c", "latitude", "longitude", "speed_kmh",
        "charge_power_kw", "tire_pressure_psi", "odometer_km",
    )(_flush_tiny_field)  # fmt: skip
