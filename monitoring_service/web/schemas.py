"""The shapes of the console's own API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ConsoleConfig(BaseModel):
    """What the console needs to know about the service it runs on."""

    operator: str = Field(description="the name of the key that signed in")
    control_url: str | None = Field(description="null: the console's host, port 8001")
    stale_after_s: float
    monitor_interval_s: float
    ev_low_battery_percent: float
    ev_critical_battery_percent: float


class EvPosition(BaseModel):
    """A vehicle where its newest reading put it."""

    unit_id: str
    fleet_id: str | None
    last_seen: datetime
    charging_state: str
    soc_percent: float
    latitude: float
    longitude: float
    speed_kmh: float | None


class EvPositions(BaseModel):
    """Every vehicle (at most 20,000)."""

    items: list[EvPosition]
    truncated: bool
