"""The monitoring read API: summary, alerts, sites, units and their telemetry (operator keys)."""

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from common.http import reject_unknown_query
from common.keys import ApiKey
from monitoring_service import unit_handlers as handlers
from monitoring_service.alert_handlers import NotFound
from monitoring_service.api_alerts import alerts_router
from monitoring_service.api_common import MAX_PAGE, UNIT_ID, MonitorDep, Pool, errors, operator_key
from monitoring_service.figures import Report
from monitoring_service.schemas import (
    SiteHistory,
    SitePage,
    TelemetryPage,
    UnitDetail,
    UnitPage,
)
from monitoring_service.settings import MonitoringSettings

MAX_TELEMETRY_ROWS = 10_000
UnitId = Annotated[str, Path(pattern=UNIT_ID, examples=["MP-0001"])]
SiteId = Annotated[str, Path(pattern=UNIT_ID, examples=["SITE-01"])]
From = Annotated[datetime | None, Query(alias="from")]
To = Annotated[datetime | None, Query(alias="to")]
T = TypeVar("T")
DEFAULT_SITE_HOURS = 6


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _window(
    start: datetime | None, end: datetime | None, default: timedelta
) -> tuple[datetime, datetime]:
    """[from, to) as asked, naive times read as UTC; by default the last `default` up to now."""
    end = _utc(end) if end else datetime.now(UTC)
    return (_utc(start) if start else end - default), end


async def _read(answer: Awaitable[T]) -> T:
    """A handler's answer; its refusals as 404 (nothing of that id) and 422 (a bad range)."""
    try:
        return await answer
    except NotFound as error:
        raise HTTPException(404, str(error)) from None
    except handlers.BadRange as error:
        raise HTTPException(422, str(error)) from None


def monitoring_router(settings: MonitoringSettings) -> APIRouter:
    """The read endpoints, bound to the settings."""

    Operator = Annotated[ApiKey, Depends(operator_key(settings))]
    router = APIRouter(
        prefix="/v1",
        responses=errors(401, 403, 422),
        dependencies=[Depends(reject_unknown_query)],
    )
    stale_s = settings.stale_after_s

    @router.get("/monitoring/summary", response_model=Report, tags=["monitoring"])
    async def summary(_: Operator, monitor: MonitorDep) -> Report:
        """The latest report (computed now if none was stored yet)."""
        if monitor.latest is None:
            await monitor.seed()
        return monitor.latest or await monitor.compute()

    router.include_router(alerts_router(settings))

    @router.get("/sites", response_model=SitePage, tags=["sites"])
    async def list_sites(_: Operator, pool: Pool) -> SitePage:
        """Every site: units, reporting, energy (MWh), power (MW), worst active severity."""
        return await handlers.list_sites(
            pool=pool, stale_after_s=stale_s, capacity_kwh=settings.megapack_capacity_kwh
        )

    @router.get(
        "/sites/{site_id}/telemetry", response_model=SiteHistory, tags=["sites"],
        responses=errors(404),
    )  # fmt: skip
    async def site_telemetry(
        site_id: SiteId, _: Operator, pool: Pool, start: From = None, end: To = None,
        limit: Annotated[int, Query(ge=1, le=MAX_TELEMETRY_ROWS)] = 1440,
    ) -> SiteHistory:  # fmt: skip
        """The site's power, energy and SOC spread per minute over its Megapacks' 1-minute
        buckets, in the whole minutes of [from, to) (default: the last 6 hours; at most 31 days).
        """
        start, end = _window(start, end, timedelta(hours=DEFAULT_SITE_HOURS))
        history = handlers.site_history(
            pool=pool, site_id=site_id, start=start, end=end,
            capacity_kwh=settings.megapack_capacity_kwh, limit=limit,
        )  # fmt: skip
        return await _read(history)

    @router.get("/units", response_model=UnitPage, tags=["units"])
    async def list_units(
        _: Operator,
        pool: Pool,
        kind: Literal["megapack", "ev"] | None = None,
        site: Annotated[str | None, Query(pattern=UNIT_ID)] = None,
        fleet: Annotated[str | None, Query(pattern=UNIT_ID)] = None,
        state: Annotated[str | None, Query(pattern=r"^[A-Z_]{1,32}$")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        cursor: Annotated[str | None, Query(pattern=UNIT_ID)] = None,
    ) -> UnitPage:
        """Units in id order; `cursor` is the last unit id of the previous page."""
        where = handlers.UnitQuery(
            kind=kind, site_id=site, fleet_id=fleet, state=state, after=cursor
        )
        return await handlers.list_units(pool=pool, stale_after_s=stale_s, where=where, limit=limit)

    @router.get(
        "/units/{unit_id}", response_model=UnitDetail, tags=["units"], responses=errors(404)
    )
    async def get_unit(unit_id: UnitId, _: Operator, pool: Pool) -> UnitDetail:
        """A unit's latest state and its newest stored reading."""
        try:
            return await handlers.get_unit(pool=pool, unit_id=unit_id, stale_after_s=stale_s)
        except NotFound as error:
            raise HTTPException(404, str(error)) from None

    @router.get(
        "/units/{unit_id}/telemetry",
        response_model=TelemetryPage,
        tags=["units"],
        responses=errors(404),
    )
    async def telemetry(
        unit_id: UnitId,
        _: Operator,
        pool: Pool,
        start: From = None,
        end: To = None,
        bucket: Literal["raw", "1m"] = "raw",
        limit: Annotated[int, Query(ge=1, le=MAX_TELEMETRY_ROWS)] = 1000,
    ) -> TelemetryPage:
        """Readings in [from, to) (default: the last hour), raw or in 1-minute buckets.

        A raw range spans at most a day, a bucketed one at most 31 days.
        """
        start, end = _window(start, end, timedelta(hours=1))
        readings = handlers.telemetry(
            pool=pool, unit_id=unit_id, stale_after_s=stale_s, start=start, end=end,
            bucketed=bucket == "1m", limit=limit,
        )  # fmt: skip
        return await _read(readings)

    return router
