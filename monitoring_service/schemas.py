"""The shapes of the monitoring read API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, Field

AlertState = Literal["active", "acknowledged", "cleared"]


class AlertPublic(BaseModel):
    """One alert episode."""

    alert_id: int
    rule: str
    unit_id: str
    kind: str
    site_id: str | None
    fleet_id: str | None
    severity: str
    state: AlertState
    message: str
    value: float | None = Field(description="the measurement that raised it")
    threshold: float | None
    fault_codes: list[str]
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="the operator key's name")
    cleared_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> AlertPublic:
        """Build from an `alerts` row."""
        return cls(**{name: row[name] for name in cls.model_fields})


class AlertPage(BaseModel):
    """A page of alerts, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[AlertPublic]
    next_cursor: str | None


class UnitPublic(BaseModel):
    """A unit's registry entry and latest state."""

    unit_id: str
    kind: Literal["megapack", "ev"]
    site_id: str | None
    fleet_id: str | None
    first_seen: datetime
    last_seen: datetime
    state: str
    soc_percent: float
    power_kw: float | None
    temperature_c: float | None
    fault_codes: list[str]
    capacity_kwh: float | None
    stale: bool = Field(description="silent for at least STALE_AFTER_S")

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> UnitPublic:
        """Build from a `units` row."""
        return cls(
            unit_id=row["unit_id"],
            kind=row["kind"],
            site_id=row["site_id"],
            fleet_id=row["fleet_id"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            state=row["last_state"],
            soc_percent=row["last_soc_percent"],
            power_kw=row["last_power_kw"],
            temperature_c=row["last_temperature_c"],
            fault_codes=list(row["last_fault_codes"]),
            capacity_kwh=row["capacity_kwh"],
            stale=row["stale"],
        )


class UnitPage(BaseModel):
    """A page of units in id order."""

    items: list[UnitPublic]
    next_cursor: str | None


class UnitDetail(UnitPublic):
    """A unit with its newest stored reading."""

    latest_reading: dict[str, Any] | None


class TelemetryPage(BaseModel):
    """A unit's readings, or 1-minute buckets, in [from, to), oldest first."""

    unit_id: str
    kind: Literal["megapack", "ev"]
    bucket: Literal["raw", "1m"]
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    items: list[dict[str, Any]]
    truncated: bool = Field(description="more rows in the range than `limit`")
