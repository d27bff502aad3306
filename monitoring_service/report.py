"""Compute one report: SQL figures over the window plus what the probes saw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from db.monitoring import Conn

if TYPE_CHECKING:
    from db.monitoring import Conn

from db import monitoring as sql
from db.monitoring_alert_actions import open_alerts_by_severity
from monitoring_service.figures import (
    EvFigures,
    FaultFigures,
    GatewaySample,
    IngestFigures,
    Report,
    SiteFigures,
    SocFigures,
    UnitFigures,
    UnitLine,
)
from monitoring_service.kpi_report import today_line
from monitoring_service.probes import GatewayRates, QueueSample
from monitoring_service.rules import SEVERITIES
from monitoring_service.settings import ReportSettings

WORST_UNITS_LISTED = 10


def slot_start(end: datetime, interval_s: float) -> datetime:
    """Start of the interval `end` falls in (the same for every instance)."""
    epoch_s = end.timestamp()
    return datetime.fromtimestamp(epoch_s - epoch_s % interval_s, UTC)


def _ingest(
    row: asyncpg.Record,
    *,
    window_s: float,
    rates: GatewayRates | None,
    sample: GatewaySample | None,
    queues: QueueSample,
) -> IngestFigures:
    return IngestFigures(
        megapack_readings=row["megapack_readings"],
        ev_readings=row["ev_readings"],
        megapack_readings_per_s=row["megapack_readings"] / window_s,
        ev_readings_per_s=row["ev_readings"] / window_s,
        lag_p50_ms=row["lag_p50_ms"],
        lag_p95_ms=row["lag_p95_ms"],
        gateway_requests_per_s=rates.requests_per_s if rates else None,
        gateway_rejections_per_s=rates.rejections_per_s if rates else None,
        gateway_replicas=rates.replicas if rates else None,
        gateway_rejections=rates.rejections if rates else None,
        queue_depth=queues.depth,
        queue_consumers=queues.consumers,
        dead_letters=queues.dead_letters,
        gateway_sample=sample,
    )


async def compute_report(
    *,
    conn: Conn,
    settings: ReportSettings,
    end: datetime,
    rates: GatewayRates | None = None,
    sample: GatewaySample | None = None,
    queues: QueueSample | None = None,
) -> Report:
    """The report of the window ending at `end`, over every unit of the database."""
    window_s = settings.monitor_interval_s
    start = end - timedelta(seconds=window_s)
    stale_s = settings.stale_after_s
    ingest = await sql.ingest_figures(conn, start=start, end=end)
    megapacks = await sql.megapack_figures(conn, low_soc_percent=settings.low_soc_percent)
    sites = await sql.site_figures(
        conn,
        end=end,
        stale_after_s=stale_s,
        capacity_kwh=settings.megapack_capacity_kwh,
    )
    kinds = {
        row["kind"]: row for row in await sql.unit_counts(conn, end=end, stale_after_s=stale_s)
    }
    evs = await sql.ev_figures(
        conn,
        end=end,
        stale_after_s=stale_s,
        low_percent=settings.ev_low_battery_percent,
        critical_percent=settings.ev_critical_battery_percent,
    )
    codes = await sql.fault_code_counts(conn)
    alerts = await open_alerts_by_severity(conn)
    worst = await sql.worst_units(conn, end=end, stale_after_s=stale_s, limit=WORST_UNITS_LISTED)
    total = sum(row["total"] for row in kinds.values())
    reporting = sum(row["reporting"] for row in kinds.values())
    open_by_severity = {severity: 0 for severity in SEVERITIES}
    open_by_severity.update({row["severity"]: row["open"] for row in alerts})
    return Report(
        generated_at=datetime.now(UTC),
        window_start=start,
        window_end=end,
        window_s=window_s,
        ingest=_ingest(
            ingest, window_s=window_s, rates=rates, sample=sample, queues=queues or QueueSample()
        ),
        soc=SocFigures(
            mean_percent=megapacks["soc_mean"],
            min_percent=megapacks["soc_min"],
            max_percent=megapacks["soc_max"],
            low_threshold_percent=settings.low_soc_percent,
            units_low=megapacks["low_soc"],
            sites=[SiteFigures(**dict(row)) for row in sites],
        ),
        faults=FaultFigures(
            units_in_fault=megapacks["in_fault"],
            new_faults=await sql.new_faults(conn, start=start, end=end),
            by_code={row["code"]: row["units"] for row in codes},
            open_alerts=open_by_severity,
            unacknowledged_alerts=sum(row["active"] for row in alerts),
        ),
        units=UnitFigures(
            total=total,
            reporting=reporting,
            stale=total - reporting,
            megapacks=kinds["megapack"]["total"] if "megapack" in kinds else 0,
            evs=kinds["ev"]["total"] if "ev" in kinds else 0,
        ),
        evs=EvFigures(
            total=evs["total"],
            driving=evs["driving"],
            charging=evs["charging"],
            low_battery=evs["low_battery"],
            critical_battery=evs["critical_battery"],
            low_threshold_percent=settings.ev_low_battery_percent,
            critical_threshold_percent=settings.ev_critical_battery_percent,
        ),
        worst_units=[
            UnitLine(
                unit_id=row["unit_id"],
                kind=row["kind"],
                group_id=row["group_id"],
                state=row["last_state"],
                soc_percent=row["last_soc_percent"],
                temperature_c=row["last_temperature_c"],
                power_kw=row["last_power_kw"],
                fault_codes=list(row["last_fault_codes"]),
                silent_s=row["silent_s"],
                stale=row["stale"],
            )
            for row in worst
        ],
        kpis_today=await today_line(conn=conn, settings=settings, end=end),
    )
