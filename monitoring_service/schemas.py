"""The shapes of the monitoring read API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from monitoring_service.rules import Severity

MAX_SHELVE_S = 30 * 86_400

AlertState = Literal[
    "active_unacknowledged", "active_acknowledged", "cleared_unacknowledged", "cleared"
]
AlertEventKind = Literal[
    "raised", "severity_changed", "cleared", "acknowledged", "shelved", "unshelved", "assigned"
]


class AlertPublic(BaseModel):
    """One alert: one rule on one unit for one episode (ISA-18.2 states)."""

    alert_id: int
    rule: str
    unit_id: str
    kind: str
    site_id: str | None
    fleet_id: str | None
    severity: Severity = Field(description="now; rises and falls within the episode")
    peak_severity: Severity = Field(description="the worst of the episode")
    state: AlertState
    active: bool = Field(description="the condition holds (state active_*)")
    acknowledged: bool
    shelved: bool = Field(description="shelved now: hidden from the active list, not notified")
    message: str
    value: float | None = Field(description="the measurement at the latest severity change")
    threshold: float | None = Field(description="the threshold of the current severity")
    fault_codes: list[str]
    raised_at: datetime
    updated_at: datetime
    cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="the operator key's name")
    shelved_until: datetime | None
    shelved_at: datetime | None
    shelved_by: str | None
    shelve_reason: str | None
    assigned_to: str | None
    assigned_at: datetime | None
    assigned_by: str | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> AlertPublic:
        """Build from an `alerts` row (with its computed `shelved`)."""
        state = row["state"]
        values = {name: row[name] for name in cls.model_fields if name in row}
        return cls(
            **values,
            active=state.startswith("active_"),
            acknowledged=state in ("active_acknowledged", "cleared"),
        )


class AlertEvent(BaseModel):
    """One step of an alert's history."""

    event_id: str = Field(description="the notification's event_id")
    event: AlertEventKind
    at: datetime
    by: str | None = Field(description="the key's name; null: the rules or an expiry")
    severity: Severity = Field(description="the alert's severity after the event")
    previous_severity: Severity | None
    silenced: bool = Field(description="happened while shelved: not notified")

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> AlertEvent:
        """Build from an `alert_events` row."""
        return cls(**{**{n: row[n] for n in cls.model_fields}, "event_id": str(row["event_id"])})


class AlertDetail(AlertPublic):
    """An alert with its history."""

    events: list[AlertEvent]


class AlertPage(BaseModel):
    """A page of alerts, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[AlertPublic]
    next_cursor: str | None


class ShelveRequest(BaseModel):
    """Shelve an alert for a while."""

    model_config = ConfigDict(extra="forbid")

    for_s: float = Field(gt=0, le=MAX_SHELVE_S, description="seconds, at most 30 days")
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$")  # no NUL: text


class AssignRequest(BaseModel):
    """Hand an alert to someone (null: to nobody)."""

    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")


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


class SiteAlerts(BaseModel):
    """A site's active alerts (not shelved) by severity."""

    critical: int
    warning: int
    info: int
    unacknowledged: int


class SitePublic(BaseModel):
    """One site at a glance (Megapacks; power from the units still reporting)."""

    site_id: str
    units: int
    reporting: int
    stale: int
    energy_stored_mwh: float
    capacity_mwh: float
    net_power_mw: float = Field(description="positive: discharging to the grid")
    charging_mw: float
    discharging_mw: float
    soc_min_percent: float
    soc_mean_percent: float
    soc_max_percent: float
    worst_severity: Severity | None = Field(description="of its active alerts; null: none")
    active_alerts: SiteAlerts

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> SitePublic:
        """Build from a roll-up row."""
        counts = SiteAlerts(**{name: row[name] for name in SiteAlerts.model_fields})
        values = {n: row[n] for n in cls.model_fields if n not in ("stale", "active_alerts")}
        return cls(**values, stale=row["units"] - row["reporting"], active_alerts=counts)


class SitePage(BaseModel):
    """Every site, in id order."""

    items: list[SitePublic]


class SiteBucket(BaseModel):
    """One minute of a site: its Megapacks' 1-minute averages summed (SOC: spread of them)."""

    bucket: datetime
    units: int = Field(description="Megapacks with readings in this minute")
    net_power_mw: float = Field(description="positive: discharging to the grid")
    charging_mw: float
    discharging_mw: float
    energy_stored_mwh: float = Field(description="of the units with readings in this minute")
    soc_mean_percent: float
    soc_min_percent: float
    soc_max_percent: float
    temperature_max_c: float


class SiteHistory(BaseModel):
    """A site's 1-minute buckets in [from, to), oldest first."""

    site_id: str
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    items: list[SiteBucket]
    truncated: bool = Field(description="more buckets in the range than `limit`")
