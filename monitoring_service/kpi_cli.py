"""`python -m monitoring_service kpis`: the KPIs of a unit, a site or the fleet, printed."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

import asyncpg
from rich.console import Console
from rich.table import Table

from common.settings import load_settings
from monitoring_service.kpi_api import report_csv
from monitoring_service.kpi_figures import KpiReport
from monitoring_service.kpi_handler import KpiError, KpiQuery, KpiSettings, compute_kpis
from monitoring_service.settings import ReportSettings

WIDTH = 150  # columns when stdout is not a terminal


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time or date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def add_kpis_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `kpis` subcommand."""
    kpis = commands.add_parser(
        "kpis",
        help="print energy, RTE, cycles, availability... per bucket (from the database)",
        description="KPIs per hour or day of a site, a unit or the whole Megapack fleet "
        "(definitions in docs/API.md). DATABASE_URL, STALE_AFTER_S, MEGAPACK_CAPACITY_KWH "
        "and TELEMETRY_INTERVAL_S from the environment.",
    )
    scope = kpis.add_mutually_exclusive_group(required=True)
    scope.add_argument("--site", metavar="SITE_ID", help="one site")
    scope.add_argument("--unit", metavar="UNIT_ID", help="one Megapack")
    scope.add_argument("--fleet", action="store_true", help="every Megapack")
    kpis.add_argument(
        "--from", dest="start", type=_moment, help="RFC 3339 (default: 1 or 30 days back)"
    )
    kpis.add_argument("--to", dest="end", type=_moment, help="RFC 3339 (default: now)")
    kpis.add_argument("--bucket", choices=("1h", "1d"), default="1d", help="default 1d")
    output = kpis.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the API's JSON")
    output.add_argument("--csv", action="store_true", help="the API's CSV")


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "–" if value is None else f"{value:{fmt}}"


def kpi_table(report: KpiReport) -> Table:
    """The report as a rich table, one row per bucket."""
    what = "fleet" if report.scope == "fleet" else f"{report.scope} {report.id}"
    table = Table(
        title=f"KPIs of {what}: {report.units} units, {report.capacity_kwh / 1000:.1f} MWh "
        f"({report.source.replace('_', ' ')})",
        title_justify="left",
    )
    headers = ("bucket", "in kWh", "out kWh", "RTE %", "cycles", "avail %", "planned %")
    for header in (*headers, "unplanned %", "peak in kW", "peak out kW", "SOH", "readings"):
        table.add_column(header, justify="left" if header == "bucket" else "right")
    table.add_column("gaps", justify="right")
    stamp = "%Y-%m-%d %H:%M" if report.bucket == "1h" else "%Y-%m-%d"
    for item in report.items:
        table.add_row(
            item.bucket_start.strftime(stamp),
            _num(item.energy_charged_kwh),
            _num(item.energy_discharged_kwh),
            _num(item.rte_percent),
            _num(item.equivalent_full_cycles, ".3f"),
            _num(item.availability_percent, ".2f"),
            _num(item.planned_outage_percent, ".2f"),
            _num(item.unplanned_outage_percent, ".2f"),
            _num(item.peak_charge_kw, ".0f"),
            _num(item.peak_discharge_kw, ".0f"),
            _num(item.soh_last, ".2f"),
            f"{item.readings_received}/{item.readings_expected}",
            str(item.gap_count),
        )
    return table


async def _compute(settings: ReportSettings, query: KpiQuery) -> KpiReport:
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        return await compute_kpis(
            conn=conn,
            query=query,
            settings=KpiSettings(
                stale_after_s=settings.stale_after_s,
                default_capacity_kwh=settings.megapack_capacity_kwh,
                expected_interval_s=settings.telemetry_interval_s,
            ),
        )
    finally:
        await conn.close()


def run_kpis(args: argparse.Namespace) -> None:
    """Compute and print; one clear line and exit status 1 or 2 on failure."""
    settings = load_settings(ReportSettings, "monitoring_service")
    scope = "unit" if args.unit else "site" if args.site else "fleet"
    query = KpiQuery(scope, args.unit or args.site, args.start, args.end, args.bucket)
    try:
        report = asyncio.run(_compute(settings, query))
    except KpiError as error:
        raise SystemExit(f"monitoring_service kpis: {error.detail}") from None
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        raise SystemExit(f"monitoring_service kpis: cannot read the database: {error}") from None
    if args.json:
        print(json.dumps(report.model_dump(mode="json", by_alias=True)), flush=True)
    elif args.csv:
        sys.stdout.write(report_csv(report))
    else:
        Console(width=None if sys.stdout.isatty() else WIDTH).print(kpi_table(report))
