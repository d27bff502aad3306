"""The daily KPI line of the monitoring report: the Megapack fleet's UTC day so far.

Read from the raw rows (PostgreSQL) a day of telemetry is a second or more, so the line is
recomputed at most every `KPI_REPORT_REFRESH_S` (default 300 s), not on every report.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from monitoring_service.kpi_figures import floor_to
from monitoring_service.kpi_handler import KpiQuery, KpiSettings, compute_kpis

if TYPE_CHECKING:
    from db.monitoring import Conn
    from monitoring_service.settings import ReportSettings

REFRESH_S = 300.0
DAY = timedelta(days=1)


class KpiLine(BaseModel):
    """The fleet's KPIs of the UTC day so far."""

    day: datetime
    energy_charged_kwh: float
    energy_discharged_kwh: float
    rte_percent: float | None
    equivalent_full_cycles: float
    availability_percent: float | None
    gap_count: int
    computed_at: datetime


def kpi_text(line: KpiLine) -> str:
    """The line as the console report prints it."""
    rte = "n/a" if line.rte_percent is None else f"{line.rte_percent:.1f} %"
    available = "n/a" if line.availability_percent is None else f"{line.availability_percent:.1f} %"
    return (
        f"in {line.energy_charged_kwh / 1000:.2f} MWh  out {line.energy_discharged_kwh / 1000:.2f}"
        f" MWh  RTE {rte}  cycles {line.equivalent_full_cycles:.2f}  available {available}"
        f"  gaps {line.gap_count}"
    )


def kpi_colour(line: KpiLine) -> Literal["green", "yellow", "red"]:
    """Red under 90 % availability, yellow under 99 % or with gaps."""
    available = line.availability_percent
    if available is not None and available < 90.0:
        return "red"
    return "yellow" if line.gap_count or (available is not None and available < 99.0) else "green"


_latest: dict[str, tuple[float, KpiLine]] = {}


async def today_line(*, conn: Conn, settings: ReportSettings, end: datetime) -> KpiLine | None:
    """Today's line (None without Megapacks); cached per database."""
    key = settings.database_url
    cached = _latest.get(key)
    day = floor_to(end, "1d")
    if cached and cached[1].day == day and time.monotonic() - cached[0] < REFRESH_S:
        return cached[1]
    report = await compute_kpis(
        conn=conn,
        query=KpiQuery(scope="fleet", scope_id=None, start=day, end=day + DAY, bucket="1d"),
        settings=KpiSettings(
            stale_after_s=settings.stale_after_s,
            default_capacity_kwh=settings.megapack_capacity_kwh,
            expected_interval_s=settings.telemetry_interval_s,
        ),
        now=end,
    )
    if not report.units:
        return None
    (item,) = report.items
    line = KpiLine(
        day=day,
        energy_charged_kwh=item.energy_charged_kwh,
        energy_discharged_kwh=item.energy_discharged_kwh,
        rte_percent=item.rte_percent,
        equivalent_full_cycles=item.equivalent_full_cycles,
        availability_percent=item.availability_percent,
        gap_count=item.gap_count,
        computed_at=end,
    )
    _latest[key] = (time.monotonic(), line)
    return line
