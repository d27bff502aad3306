"""The monitoring read API: summary, alerts, units and their telemetry (operator keys)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from common.http import operator_key_dependency, reject_unknown_query
from common.keys import ApiKey
from common.readings import ID_PATTERN
from common.schemas import ErrorBody
from db import monitoring_alerts as alerts_sql
from db import monitoring_queries as units_sql
from monitoring_service.figures import Report
from monitoring_service.job import Monitor
from monitoring_service.schemas import (
    AlertPage,
    AlertPublic,
    AlertState,
    TelemetryPage,
    UnitDetail,
    UnitPage,
    UnitPublic,
)
from monitoring_service.settings import MonitoringSettings

UNIT_ID = ID_PATTERN  # the one id rule (SPEC §4)
MAX_PAGE = 500
MAX_TELEMETRY_ROWS = 10_000
MAX_RAW_RANGE = timedelta(days=1)
MAX_BUCKETED_RANGE = timedelta(days=31)

_TEXT = {
    401: "no key, or an unknown key",
    403: "a device key: the monitoring API needs an operator key",
    404: "unknown unit or alert",
    409: "the alert is already cleared",
    422: "bad parameter, cursor or time range",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": _TEXT[status]} for status in statuses}


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


Pool = Annotated[asyncpg.Pool, Depends(_pool)]
MonitorDep = Annotated[Monitor, Depends(_monitor)]
UnitId = Annotated[str, Path(pattern=UNIT_ID, examples=["MP-0001"])]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def monitoring_router(settings: MonitoringSettings) -> APIRouter:
    """The read endpoints, bound to the settings."""

    operator_key = operator_key_dependency(
        operators=settings.operator_api_keys,
        devices=settings.device_api_keys,
        refused_reason="device keys may not read monitoring data; use an operator key",
    )

    Operator = Annotated[ApiKey, Depends(operator_key)]
    router = APIRouter(
        prefix="/v1",
        responses=_errors(401, 403, 422),
        dependencies=[Depends(reject_unknown_query)],
    )

    @router.get("/monitoring/summary", response_model=Report, tags=["monitoring"])
    async def summary(_: Operator, monitor: MonitorDep) -> Report:
        """The latest report (computed now if none was stored yet)."""
        if monitor.latest is None:
            await monitor.seed()
        return monitor.latest or await monitor.compute()

    @router.get("/alerts", response_model=AlertPage, tags=["alerts"], responses=_errors(422))
    async def list_alerts(
        _: Operator,
        pool: Pool,
        state: AlertState | None = None,
        unit_id: Annotated[str | None, Query(pattern=UNIT_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    ) -> AlertPage:
        """Alerts newest first: `state=active` (not acknowledged), `acknowledged`, `cleared`."""
        async with pool.acquire() as conn:
            rows = await alerts_sql.list_alerts(
                conn,
                state=state,
                unit_id=unit_id,
                before_id=int(cursor) if cursor else None,
                limit=limit,
            )
        items = [AlertPublic.from_row(row) for row in rows]
        more = len(items) == limit
        return AlertPage(items=items, next_cursor=str(items[-1].alert_id) if more else None)

    @router.post(
        "/alerts/{alert_id}/ack",
        response_model=AlertPublic,
        tags=["alerts"],
        responses=_errors(404, 409),
    )
    async def acknowledge(
        alert_id: Annotated[int, Path(ge=1, le=2**62)], key: Operator, pool: Pool
    ) -> AlertPublic:
        """Acknowledge an active alert (acknowledging twice is harmless)."""
        async with pool.acquire() as conn:
            state = await alerts_sql.acknowledge(conn, alert_id=alert_id, by=key.name)
            row = await alerts_sql.get_alert(conn, alert_id=alert_id)
        if state is None or row is None:
            raise HTTPException(404, "no such alert")
        if state == "cleared":
            raise HTTPException(409, "the alert is already cleared")
        return AlertPublic.from_row(row)

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
        async with pool.acquire() as conn:
            rows = await units_sql.list_units(
                conn,
                stale_after_s=settings.stale_after_s,
                kind=kind,
                site_id=site,
                fleet_id=fleet,
                state=state,
                after=cursor,
                limit=limit,
            )
        items = [UnitPublic.from_row(row) for row in rows]
        return UnitPage(items=items, next_cursor=items[-1].unit_id if len(items) == limit else None)

    @router.get(
        "/units/{unit_id}", response_model=UnitDetail, tags=["units"], responses=_errors(404)
    )
    async def get_unit(unit_id: UnitId, _: Operator, pool: Pool) -> UnitDetail:
        """A unit's latest state and its newest stored reading."""
        async with pool.acquire() as conn:
            row = await units_sql.get_unit(
                conn, unit_id=unit_id, stale_after_s=settings.stale_after_s
            )
            if row is None:
                raise HTTPException(404, "unknown unit")
            latest = await units_sql.latest_reading(conn, kind=row["kind"], unit_id=unit_id)
        return UnitDetail(**UnitPublic.from_row(row).model_dump(), latest_reading=latest)

    @router.get(
        "/units/{unit_id}/telemetry",
        response_model=TelemetryPage,
        tags=["units"],
        responses=_errors(404),
    )
    async def telemetry(
        unit_id: UnitId,
        _: Operator,
        pool: Pool,
        start: Annotated[datetime | None, Query(alias="from")] = None,
        end: Annotated[datetime | None, Query(alias="to")] = None,
        bucket: Literal["raw", "1m"] = "raw",
        limit: Annotated[int, Query(ge=1, le=MAX_TELEMETRY_ROWS)] = 1000,
    ) -> TelemetryPage:
        """Readings in [from, to) (default: the last hour), raw or in 1-minute buckets.

        A raw range spans at most a day, a bucketed one at most 31 days.
        """
        end = _utc(end) if end else datetime.now(UTC)
        start = _utc(start) if start else end - timedelta(hours=1)
        longest = MAX_BUCKETED_RANGE if bucket == "1m" else MAX_RAW_RANGE
        async with pool.acquire() as conn:
            row = await units_sql.get_unit(
                conn, unit_id=unit_id, stale_after_s=settings.stale_after_s
            )
            if row is None:  # the resource first, then what is asked of it
                raise HTTPException(404, "unknown unit")
            if start >= end:
                raise HTTPException(422, "`from` must be before `to`")
            if end - start > longest:
                raise HTTPException(422, f"range too long for bucket={bucket}: at most {longest}")
            items = await units_sql.telemetry(
                conn,
                kind=row["kind"],
                unit_id=unit_id,
                start=start,
                end=end,
                bucketed=bucket == "1m",
                limit=limit + 1,
            )
        return TelemetryPage(
            unit_id=unit_id,
            kind=row["kind"],
            bucket=bucket,
            start=start,
            end=end,
            items=items[:limit],
            truncated=len(items) > limit,
        )

    return router
