"""`GET /v1/kpis`: energy accounting per bucket, JSON or CSV (operator keys)."""

import csv
import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from common.http import reject_unknown_query
from common.keys import ApiKey
from db.kpis import STATES
from monitoring_service.api_common import UNIT_ID, Pool, errors, operator_key
from monitoring_service.kpi_figures import BucketName, KpiReport, Scope
from monitoring_service.kpi_handler import KpiError, KpiQuery, KpiSettings, compute_kpis
from monitoring_service.settings import MonitoringSettings

CSV_TYPE = "text/csv"
CSV_COLUMNS = (
    "bucket_start", "bucket_end", "energy_charged_kwh", "energy_discharged_kwh",
    "stored_energy_change_kwh", "rte_percent", "equivalent_full_cycles", "availability_percent",
    "planned_outage_percent", "unplanned_outage_percent",
    *(f"time_in_state_{state.lower()}_s" for state in STATES),
    "not_reporting_s", "peak_charge_kw", "peak_discharge_kw", "soh_first", "soh_last",
    "readings_expected", "readings_received", "units_reporting", "gap_count",
)  # fmt: skip


def kpi_settings(settings: MonitoringSettings) -> KpiSettings:
    """The accounting settings out of the service's."""
    return KpiSettings(
        stale_after_s=settings.stale_after_s,
        default_capacity_kwh=settings.megapack_capacity_kwh,
        expected_interval_s=settings.telemetry_interval_s,
    )


def report_csv(report: KpiReport) -> str:
    """One CSV line per bucket (the gaps as a count; JSON lists them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in report.items:
        values: dict[str, Any] = item.model_dump(mode="json")
        for state, seconds in item.time_in_state_s.items():
            values[f"time_in_state_{state.lower()}_s"] = seconds
        writer.writerow(["" if values[name] is None else values[name] for name in CSV_COLUMNS])
    return out.getvalue()


def kpi_router(settings: MonitoringSettings) -> APIRouter:
    """The KPI endpoint, bound to the settings."""
    Operator = Annotated[ApiKey, Depends(operator_key(settings))]
    accounting = kpi_settings(settings)
    router = APIRouter(prefix="/v1", dependencies=[Depends(reject_unknown_query)])

    @router.get(
        "/kpis",
        response_model=KpiReport,
        response_model_by_alias=True,
        tags=["kpis"],
        responses={
            **errors(401, 403, 404, 422),
            200: {"content": {CSV_TYPE: {}}, "description": "JSON, or CSV for Accept: text/csv"},
        },
    )
    async def kpis(
        request: Request,
        _: Operator,
        pool: Pool,
        scope: Scope,
        scope_id: Annotated[str | None, Query(alias="id", pattern=UNIT_ID)] = None,
        start: Annotated[datetime | None, Query(alias="from")] = None,
        end: Annotated[datetime | None, Query(alias="to")] = None,
        bucket: BucketName = "1h",
    ) -> Any:
        """Energy, RTE, cycles, availability, states, peaks, SOH and completeness per bucket.

        The range is widened to whole UTC hours / days; default: the last day (1h) or the
        last 30 days (1d); at most 31 days hourly, 366 days daily.
        """
        query = KpiQuery(scope=scope, scope_id=scope_id, start=start, end=end, bucket=bucket)
        try:
            async with pool.acquire() as conn:
                report = await compute_kpis(conn=conn, query=query, settings=accounting)
        except KpiError as error:
            raise HTTPException(error.status, error.detail) from None
        if CSV_TYPE in request.headers.get("accept", ""):
            return Response(report_csv(report), media_type=f"{CSV_TYPE}; charset=utf-8")
        return report

    return router
