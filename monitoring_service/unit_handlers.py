"""Reading the fleet: units, a unit's latest reading and telemetry, the site roll-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from db import monitoring_queries as units_sql
from db import monitoring_sites as sites_sql
from monitoring_service.alert_handlers import NotFound
from monitoring_service.schemas import (
    SiteBucket,
    SiteHistory,
    SitePage,
    SitePublic,
    TelemetryPage,
    UnitDetail,
    UnitPage,
    UnitPublic,
)

MAX_RAW_RANGE = timedelta(days=1)
MAX_BUCKETED_RANGE = timedelta(days=31)
MINUTE = timedelta(minutes=1)


class BadRange(Exception):
    """A telemetry range that cannot be served."""


@dataclass(frozen=True, slots=True)
class UnitQuery:
    """Which units to list."""

    kind: str | None = None
    site_id: str | None = None
    fleet_id: str | None = None
    state: str | None = None
    after: str | None = None


async def list_units(
    *, pool: asyncpg.Pool, stale_after_s: float, where: UnitQuery, limit: int
) -> UnitPage:
    """Units in id order after a cursor."""
    async with pool.acquire() as conn:
        rows = await units_sql.list_units(
            conn, stale_after_s=stale_after_s, kind=where.kind, site_id=where.site_id,
            fleet_id=where.fleet_id, state=where.state, after=where.after, limit=limit,
        )  # fmt: skip
    items = [UnitPublic.from_row(row) for row in rows]
    return UnitPage(items=items, next_cursor=items[-1].unit_id if len(items) == limit else None)


async def get_unit(*, pool: asyncpg.Pool, unit_id: str, stale_after_s: float) -> UnitDetail:
    """A unit's latest state and its newest stored reading."""
    async with pool.acquire() as conn:
        row = await units_sql.get_unit(conn, unit_id=unit_id, stale_after_s=stale_after_s)
        if row is None:
            raise NotFound("unknown unit")
        latest = await units_sql.latest_reading(conn, kind=row["kind"], unit_id=unit_id)
    return UnitDetail(**UnitPublic.from_row(row).model_dump(), latest_reading=latest)


def _check_range(start: datetime, end: datetime, longest: timedelta, bucket: str) -> None:
    if start >= end:
        raise BadRange("`from` must be before `to`")
    if end - start > longest:
        raise BadRange(f"range too long for bucket={bucket}: at most {longest}")


async def telemetry(
    *,
    pool: asyncpg.Pool,
    unit_id: str,
    stale_after_s: float,
    start: datetime,
    end: datetime,
    bucketed: bool,
    limit: int,
) -> TelemetryPage:
    """A unit's readings (or 1-minute buckets) in [start, end); the unit first, then the range."""
    longest = MAX_BUCKETED_RANGE if bucketed else MAX_RAW_RANGE
    async with pool.acquire() as conn:
        row = await units_sql.get_unit(conn, unit_id=unit_id, stale_after_s=stale_after_s)
        if row is None:
            raise NotFound("unknown unit")
        _check_range(start, end, longest, "1m" if bucketed else "raw")
        items = await units_sql.telemetry(
            conn, kind=row["kind"], unit_id=unit_id, start=start, end=end, bucketed=bucketed,
            limit=limit + 1,
        )  # fmt: skip
    return TelemetryPage(
        unit_id=unit_id, kind=row["kind"], bucket="1m" if bucketed else "raw", start=start,
        end=end, items=items[:limit], truncated=len(items) > limit,
    )  # fmt: skip


async def list_sites(*, pool: asyncpg.Pool, stale_after_s: float, capacity_kwh: float) -> SitePage:
    """Every site with units, energy, power, SOC spread and its worst active alert."""
    async with pool.acquire() as conn:
        rows = await sites_sql.sites(conn, stale_after_s=stale_after_s, capacity_kwh=capacity_kwh)
    return SitePage(items=[SitePublic.from_row(row) for row in rows])


async def site_history(
    *,
    pool: asyncpg.Pool,
    site_id: str,
    start: datetime,
    end: datetime,
    capacity_kwh: float,
    limit: int,
) -> SiteHistory:
    """A site's 1-minute buckets over the whole minutes that [start, end) touches."""
    start = start.replace(second=0, microsecond=0)
    whole = end.replace(second=0, microsecond=0)
    end = whole if whole == end else whole + MINUTE
    async with pool.acquire() as conn:
        if not await sites_sql.site_units(conn, site_id=site_id):
            raise NotFound("no Megapack of that site")
        _check_range(start, end, MAX_BUCKETED_RANGE, "1m")
        rows = await sites_sql.site_history(
            conn, site_id=site_id, start=start, end=end, capacity_kwh=capacity_kwh,
            limit=limit + 1,
        )  # fmt: skip
    items = [SiteBucket(**dict(row)) for row in rows[:limit]]
    return SiteHistory(
        site_id=site_id, start=start, end=end, items=items, truncated=len(rows) > limit
    )
