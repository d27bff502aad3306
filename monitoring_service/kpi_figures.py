"""KPI shapes and the figures derived from the per-bucket sums (pure logic, no I/O).

Definitions (docs/API.md, "Energy accounting and KPIs"): energy is power integrated over time
between consecutive readings by the left-point rule, never across a silence longer than
STALE_AFTER_S; RTE = discharged / (charged − Δstored) with Δstored from SOC × capacity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from db.kpis import STATES, Source

Scope = Literal["unit", "site", "fleet"]
BucketName = Literal["1h", "1d"]
BUCKETS: dict[str, timedelta] = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}
MAX_BUCKETS = {"1h": 31 * 24, "1d": 366}  # 31 days hourly, a year (leap) daily
IN_SERVICE = frozenset(("IDLE", "CHARGING", "DISCHARGING", "STANDBY", "MAINTENANCE"))
GAPS_LISTED = 100


class Row(Protocol):
    """A database row (asyncpg.Record) or any mapping read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


class Gap(BaseModel):
    """A unit silent for longer than STALE_AFTER_S (clipped to the bucket)."""

    unit_id: str
    start: datetime
    end: datetime
    duration_s: float


class KpiBucket(BaseModel):
    """The KPIs of one bucket [bucket_start, bucket_end) over the units of the scope."""

    bucket_start: datetime
    bucket_end: datetime
    energy_charged_kwh: float
    energy_discharged_kwh: float
    stored_energy_change_kwh: float = Field(description="Σ (SOC_end − SOC_start) × capacity")
    rte_percent: float | None = Field(
        description="η², η × charged − discharged / η = stored change"
    )
    equivalent_full_cycles: float
    availability_percent: float | None
    planned_outage_percent: float | None = Field(description="time in MAINTENANCE")
    unplanned_outage_percent: float | None = Field(description="FAULT, OFFLINE or silent")
    time_in_state_s: dict[str, float]
    not_reporting_s: float
    peak_charge_kw: float | None
    peak_discharge_kw: float | None
    soh_first: float | None
    soh_last: float | None
    readings_expected: int
    readings_received: int
    units_reporting: int
    gap_count: int
    gaps: list[Gap] = Field(description=f"the first {GAPS_LISTED} gaps of the bucket")


class KpiReport(BaseModel):
    """KPIs per bucket for a unit, a site or the whole Megapack fleet."""

    scope: Scope
    id: str | None
    bucket: BucketName
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    units: int
    capacity_kwh: float
    stale_after_s: float
    expected_interval_s: float
    source: Source
    items: list[KpiBucket]


def floor_to(moment: datetime, bucket: BucketName) -> datetime:
    """The start of the UTC hour or day holding `moment`."""
    moment = moment.astimezone(UTC)
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if bucket == "1h" else hour.replace(hour=0)


def ceil_to(moment: datetime, bucket: BucketName) -> datetime:
    """The first bucket boundary at or after `moment`."""
    floored = floor_to(moment, bucket)
    return floored if floored == moment else floored + BUCKETS[bucket]


def _percent(part: float, whole: float) -> float | None:
    return part / whole * 100.0 if whole > 0 else None


def rte_percent(
    charged_kwh: float, discharged_kwh: float, stored_change_kwh: float
) -> float | None:
    """Round-trip efficiency corrected for the change in stored energy ΔE; null without
    charge, or when nothing net went in; 0 when nothing came out.

    With the same efficiency η each way, E_chg × η − E_dis / η = ΔE, so
    η = (ΔE + √(ΔE² + 4 · E_chg · E_dis)) / (2 · E_chg) and RTE = η². The simpler
    E_dis / (E_chg − ΔE) charges the loss of storing ΔE to the round trip: on a simulated day
    a unit ending 1,700 kWh fuller read 89.7 % for 92.0 % (docs/API.md).
    """
    if charged_kwh <= 0 or charged_kwh - stored_change_kwh <= 0:
        return None
    if discharged_kwh <= 0:
        return 0.0
    d = stored_change_kwh
    eta = (d + math.sqrt(d * d + 4.0 * charged_kwh * discharged_kwh)) / (2.0 * charged_kwh)
    return eta * eta * 100.0


def build_bucket(
    *,
    bucket_start: datetime,
    bucket_span: timedelta,
    now: datetime,
    sums: Row | None,
    gaps: Sequence[Gap],
    units: int,
    capacity_kwh: float,
    expected_interval_s: float,
) -> KpiBucket:
    """One bucket's KPIs from its sums (None: no reading in it) and its gaps."""
    bucket_end = bucket_start + bucket_span
    elapsed_s = max(0.0, (min(bucket_end, now) - bucket_start).total_seconds())
    period_s = units * elapsed_s
    states = {
        name: float(sums[f"state_{code}"]) if sums else 0.0 for code, name in enumerate(STATES)
    }
    charged = float(sums["charged_kwh"]) if sums else 0.0
    discharged = float(sums["discharged_kwh"]) if sums else 0.0
    stored_change = float(sums["stored_change_kwh"] or 0.0) if sums else 0.0
    in_service_s = sum(seconds for name, seconds in states.items() if name in IN_SERVICE)
    power_min = sums["power_min_kw"] if sums else None
    power_max = sums["power_max_kw"] if sums else None
    availability = _percent(in_service_s, period_s)
    return KpiBucket(
        bucket_start=bucket_start,
        bucket_end=bucket_end,
        energy_charged_kwh=charged,
        energy_discharged_kwh=discharged,
        stored_energy_change_kwh=stored_change,
        rte_percent=rte_percent(charged, discharged, stored_change),
        equivalent_full_cycles=(charged + discharged) / (2.0 * capacity_kwh)
        if capacity_kwh
        else 0.0,
        availability_percent=availability,
        planned_outage_percent=_percent(states["MAINTENANCE"], period_s),
        unplanned_outage_percent=None if availability is None else 100.0 - availability,
        time_in_state_s=states,
        not_reporting_s=max(0.0, period_s - sum(states.values())),
        peak_charge_kw=max(0.0, -power_min) if power_min is not None else None,
        peak_discharge_kw=max(0.0, power_max) if power_max is not None else None,
        soh_first=sums["soh_first"] if sums else None,
        soh_last=sums["soh_last"] if sums else None,
        readings_expected=math.floor(period_s / expected_interval_s + 1e-9),
        readings_received=int(sums["readings"]) if sums else 0,
        units_reporting=int(sums["units_reporting"]) if sums else 0,
        gap_count=len(gaps),
        gaps=list(gaps[:GAPS_LISTED]),
    )


def split_gaps(
    rows: Sequence[Row], *, starts: Sequence[datetime], span: timedelta
) -> dict[datetime, list[Gap]]:
    """Each gap, clipped to every bucket it overlaps (`starts`: consecutive buckets)."""
    by_bucket: dict[datetime, list[Gap]] = {start: [] for start in starts}
    for row in rows:
        index = max(0, (row["gap_start"] - starts[0]) // span) if starts else len(starts)
        while index < len(starts) and starts[index] < row["gap_end"]:
            start = starts[index]
            low, high = max(row["gap_start"], start), min(row["gap_end"], start + span)
            if high > low:
                by_bucket[start].append(
                    Gap(
                        unit_id=row["unit_id"],
                        start=low,
                        end=high,
                        duration_s=(high - low).total_seconds(),
                    )
                )
            index += 1
    return by_bucket
