"""The monitoring report: every figure an operator reads, as one serialisable model."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from monitoring_service.kpi_report import KpiLine


class GatewaySample(BaseModel):
    """Gateway request counters as scraped once (`kind|status` -> total, and per replica)."""

    scraped_at: datetime
    requests: dict[str, float] = Field(description="summed over the replicas")
    replicas: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="each replica's counters (`host@address:port`)"
    )


class IngestFigures(BaseModel):
    """Readings stored in the window, gateway traffic, the queue and the ingest lag."""

    megapack_readings: int = Field(description="Megapack readings stored in the window")
    ev_readings: int = Field(description="EV readings stored in the window")
    megapack_readings_per_s: float
    ev_readings_per_s: float
    lag_p50_ms: float | None = Field(description="gateway receipt to database commit; null: none")
    lag_p95_ms: float | None
    gateway_requests_per_s: float | None = Field(description="null: gateway not scraped twice")
    gateway_rejections_per_s: float | None
    gateway_replicas: int | None = Field(
        default=None, description="gateway replicas whose counters the rates sum"
    )
    gateway_rejections: dict[str, int] | None = Field(
        description="rejected telemetry requests since the previous scrape, by HTTP status"
    )
    queue_depth: int | None = Field(description="messages in the ingest queue; null: unknown")
    queue_consumers: int | None
    dead_letters: int | None
    gateway_sample: GatewaySample | None = Field(
        default=None, description="raw counters, so the next report can compute rates"
    )


class SiteFigures(BaseModel):
    """One site's energy stored and power flowing (positive = discharging to the grid)."""

    site_id: str
    units: int
    reporting: int
    energy_stored_mwh: float
    net_power_mw: float
    charging_mw: float
    discharging_mw: float


class SocFigures(BaseModel):
    """Megapack state of charge (latest reading of every known unit)."""

    mean_percent: float | None
    min_percent: float | None
    max_percent: float | None
    low_threshold_percent: float
    units_low: int
    sites: list[SiteFigures]


class FaultFigures(BaseModel):
    """Faults now and in the window, and the alerts not cleared."""

    units_in_fault: int
    new_faults: int = Field(description="readings stored in the window that entered FAULT")
    by_code: dict[str, int] = Field(description="Megapacks in FAULT now, per fault code")
    open_alerts: dict[str, int] = Field(description="active alerts not shelved, by severity")
    unacknowledged_alerts: int


class UnitFigures(BaseModel):
    """How many units are known, reporting and stale."""

    total: int
    reporting: int
    stale: int
    megapacks: int
    evs: int


class EvFigures(BaseModel):
    """Vehicles: driving and charging (reporting ones), low and critical battery (all)."""

    total: int
    driving: int
    charging: int
    low_battery: int
    critical_battery: int
    low_threshold_percent: float
    critical_threshold_percent: float


class UnitLine(BaseModel):
    """One unit as the report lists it (worst first)."""

    unit_id: str
    kind: str
    group_id: str | None
    state: str
    soc_percent: float
    temperature_c: float | None
    power_kw: float | None
    fault_codes: list[str]
    silent_s: float
    stale: bool


class Report(BaseModel):
    """One monitoring report over the window [window_start, window_end)."""

    generated_at: datetime
    window_start: datetime
    window_end: datetime
    window_s: float
    ingest: IngestFigures
    soc: SocFigures
    faults: FaultFigures
    units: UnitFigures
    evs: EvFigures
    worst_units: list[UnitLine]
    kpis_today: KpiLine | None = Field(default=None, description="the fleet's UTC day so far")
