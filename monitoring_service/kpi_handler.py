"""KPIs of a scope over a range: checks the request, reads the sums, derives the figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from db import kpis as kpi_sql
from monitoring_service.kpi_figures import (
    BUCKETS,
    MAX_BUCKETS,
    BucketName,
    KpiReport,
    Scope,
    build_bucket,
    ceil_to,
    floor_to,
    split_gaps,
)

if TYPE_CHECKING:
    from db.monitoring import Conn

SCOPES = ("unit", "site", "fleet")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class KpiError(Exception):
    """A request the KPIs cannot answer: its HTTP status and what is wrong."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class KpiQuery:
    """What is asked: a scope (and its id), a range and a bucket size."""

    scope: str
    scope_id: str | None
    start: datetime | None
    end: datetime | None
    bucket: str = "1h"


@dataclass(frozen=True, slots=True)
class KpiSettings:
    """The settings the accounting depends on."""

    stale_after_s: float
    default_capacity_kwh: float
    expected_interval_s: float


def checked_range(
    query: KpiQuery, *, now: datetime
) -> tuple[Scope, BucketName, datetime, datetime]:
    """The scope, bucket and the range widened to whole buckets; KpiError when invalid."""
    if query.scope not in SCOPES:
        raise KpiError(422, f"unknown scope {query.scope!r}: one of unit, site, fleet")
    if query.bucket not in BUCKETS:
        raise KpiError(422, f"unknown bucket {query.bucket!r}: one of 1h, 1d")
    if query.scope == "fleet" and query.scope_id:
        raise KpiError(422, "`id` is not taken with scope=fleet (the whole Megapack fleet)")
    if query.scope != "fleet" and not query.scope_id:
        raise KpiError(422, f"`id` is required with scope={query.scope}")
    bucket: BucketName = "1h" if query.bucket == "1h" else "1d"
    scope: Scope = "unit" if query.scope == "unit" else "site" if query.scope == "site" else "fleet"
    end = _in_range("to", _utc(query.end) if query.end else now)
    default_span = timedelta(days=1) if bucket == "1h" else timedelta(days=30)
    start = _in_range("from", _utc(query.start) if query.start else end - default_span)
    if start >= end:
        raise KpiError(422, "`from` must be before `to`")
    start, end = floor_to(start, bucket), ceil_to(end, bucket)
    if (end - start) / BUCKETS[bucket] > MAX_BUCKETS[bucket]:
        longest = "31 days" if bucket == "1h" else "366 days"
        raise KpiError(422, f"range too long for bucket={bucket}: at most {longest}")
    return scope, bucket, start, end


async def compute_kpis(
    *,
    conn: Conn,
    query: KpiQuery,
    settings: KpiSettings,
    now: datetime | None = None,
) -> KpiReport:
    """The KPI report of a query (KpiError 422 for a bad query, 404 for an unknown id)."""
    now = now or datetime.now(UTC)
    scope, bucket, start, end = checked_range(query, now=now)
    units = await kpi_sql.scope_units(
        conn,
        scope=scope,
        scope_id=query.scope_id,
        default_capacity_kwh=settings.default_capacity_kwh,
    )
    if not units and scope != "fleet":
        raise KpiError(404, f"unknown {scope} {query.scope_id!r}: no Megapack reported as it")
    unit_ids = [row["unit_id"] for row in units]
    capacity_kwh = float(sum(row["capacity_kwh"] for row in units))
    span = BUCKETS[bucket]
    source = await kpi_sql.source_for(conn, stale_after_s=settings.stale_after_s)
    sums, gap_rows = await kpi_sql.read_kpis(
        conn,
        unit_ids=unit_ids,
        start=start,
        end=end,
        until=min(end, now),
        now=now,
        bucket=span,
        stale_after_s=settings.stale_after_s,
        default_capacity_kwh=settings.default_capacity_kwh,
        source=source,
    )
    starts = [start + index * span for index in range(int((end - start) / span))]
    by_start = {row["bucket"]: row for row in sums}
    gaps = split_gaps(gap_rows, starts=starts, span=span)
    items = [
        build_bucket(
            bucket_start=moment,
            bucket_span=span,
            now=now,
            sums=by_start.get(moment),
            gaps=gaps[moment],
            units=len(units),
            capacity_kwh=capacity_kwh,
            expected_interval_s=settings.expected_interval_s,
        )
        for moment in starts
    ]
    return KpiReport(
        scope=scope,
        id=query.scope_id,
        bucket=bucket,
        start=start,
        end=end,
        units=len(units),
        capacity_kwh=capacity_kwh,
        stale_after_s=settings.stale_after_s,
        expected_interval_s=settings.expected_interval_s,
        source=source,
        items=items,
    )


def _in_range(name: str, moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise KpiError(422, f"`{name}` out of range: 1970 to 2199")
    return moment


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
