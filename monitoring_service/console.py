"""The report as an operator reads it: colour-coded on a terminal, one JSON line otherwise."""

from __future__ import annotations

import os
import sys
from typing import Literal

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from monitoring_service.figures import Report, UnitLine
from monitoring_service.kpi_report import kpi_colour, kpi_text

Colour = Literal["green", "yellow", "red"]
DEFAULT_WIDTH = 110  # columns, when stdout is not a terminal and COLUMNS is not set


def make_console(report_format: str) -> Console:
    """Where reports go: `console` forces the coloured panel (e.g. under honcho), `json` one
    line per report, `auto` decides by whether stdout is a terminal."""
    if report_format == "console":
        width = int(os.environ.get("COLUMNS", "0") or 0) or DEFAULT_WIDTH
        return Console(file=sys.stdout, force_terminal=True, width=width)
    return Console(file=sys.stdout, force_terminal=False if report_format == "json" else None)


def json_line(report: Report) -> str:
    """The report as one line of JSON."""
    return report.model_dump_json(exclude={"ingest": {"gateway_sample"}})


def _level(*, bad: bool, warn: bool) -> Colour:
    return "red" if bad else "yellow" if warn else "green"


def _num(value: float | None, fmt: str = ".1f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def _unit_colour(unit: UnitLine, low_soc_percent: float) -> Colour:
    return _level(
        bad=unit.state == "FAULT" or unit.stale,
        warn=unit.soc_percent < low_soc_percent or unit.state in ("OFFLINE", "MAINTENANCE"),
    )


def _headline(report: Report) -> Table:
    ingest, soc, faults, units, evs = (
        report.ingest,
        report.soc,
        report.faults,
        report.units,
        report.evs,
    )
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rejections = ingest.gateway_rejections or {}
    rows: list[tuple[str, str, Colour]] = [
        (
            "ingest",
            f"megapack {ingest.megapack_readings_per_s:.1f}/s  ev {ingest.ev_readings_per_s:.1f}/s"
            f"  lag p50 {_num(ingest.lag_p50_ms, '.0f', ' ms')}"
            f"  p95 {_num(ingest.lag_p95_ms, '.0f', ' ms')}",
            _level(bad=(ingest.lag_p95_ms or 0) > 5000, warn=(ingest.lag_p95_ms or 0) > 1000),
        ),
        (
            "gateway",
            f"{_num(ingest.gateway_requests_per_s)} req/s  rejected "
            + (", ".join(f"{k}: {v}" for k, v in rejections.items()) or "none"),
            _level(bad=False, warn=bool(rejections) or ingest.gateway_requests_per_s is None),
        ),
        (
            "queue",
            f"depth {_num(ingest.queue_depth, 'd')}  consumers {_num(ingest.queue_consumers, 'd')}"
            f"  dead letters {_num(ingest.dead_letters, 'd')}",
            _level(
                bad=ingest.queue_consumers == 0 or bool(ingest.dead_letters),
                warn=ingest.queue_depth is None or (ingest.queue_depth or 0) > 10_000,
            ),
        ),
        (
            "soc",
            f"mean {_num(soc.mean_percent, '.1f', ' %')}  min {_num(soc.min_percent, '.1f', ' %')}"
            f"  max {_num(soc.max_percent, '.1f', ' %')}"
            f"  under {soc.low_threshold_percent:g} %: {soc.units_low}",
            _level(bad=False, warn=soc.units_low > 0),
        ),
        (
            "faults",
            f"in FAULT {faults.units_in_fault}  new {faults.new_faults}  codes "
            + (", ".join(f"{c}×{n}" for c, n in faults.by_code.items()) or "none")
            + "  alerts "
            + ", ".join(f"{s} {n}" for s, n in faults.open_alerts.items()),
            _level(
                bad=faults.units_in_fault > 0 or faults.open_alerts.get("critical", 0) > 0,
                warn=faults.unacknowledged_alerts > 0,
            ),
        ),
        (
            "units",
            f"{units.total} known  {units.reporting} reporting  {units.stale} stale",
            _level(bad=units.stale > 0 and units.reporting == 0, warn=units.stale > 0),
        ),
        (
            "evs",
            f"{evs.total} known  {evs.driving} driving  {evs.charging} charging"
            f"  low {evs.low_battery}  critical {evs.critical_battery}",
            _level(bad=evs.critical_battery > 0, warn=evs.low_battery > 0),
        ),
    ]
    if report.kpis_today is not None:
        rows.append(("kpis today", kpi_text(report.kpis_today), kpi_colour(report.kpis_today)))
    for label, text, colour in rows:
        table.add_row(Text(label, style=colour), Text(text, style=colour))
    return table


def _sites(report: Report) -> Table:
    table = Table(title="sites", title_justify="left", expand=False)
    table.add_column("site", no_wrap=True)
    for column in ("units", "reporting", "stored MWh", "net MW", "charging MW", "discharging MW"):
        table.add_column(column, justify="right")
    for site in report.soc.sites:
        colour = _level(bad=site.reporting == 0, warn=site.reporting < site.units)
        table.add_row(
            site.site_id,
            str(site.units),
            str(site.reporting),
            f"{site.energy_stored_mwh:.2f}",
            f"{site.net_power_mw:+.2f}",
            f"{site.charging_mw:.2f}",
            f"{site.discharging_mw:.2f}",
            style=colour,
        )
    return table


def _worst(report: Report) -> Table:
    # Narrow terminals squeeze the text columns (ellipsis), never the unit id or the numbers.
    table = Table(title="worst units", title_justify="left")
    table.add_column("unit", no_wrap=True, min_width=7)
    for column in ("site", "state"):
        table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=5)
    for column, width in (("SOC %", 5), ("°C", 5), ("kW", 6), ("silent s", 6)):
        table.add_column(column, justify="right", no_wrap=True, min_width=width)
    table.add_column("fault codes", no_wrap=True, overflow="ellipsis", min_width=6)
    for unit in report.worst_units:
        table.add_row(
            unit.unit_id,
            unit.group_id or "",
            unit.state,
            f"{unit.soc_percent:.1f}",
            _num(unit.temperature_c),
            _num(unit.power_kw, ".0f"),
            f"{unit.silent_s:.0f}",
            ",".join(unit.fault_codes),
            style=_unit_colour(unit, report.soc.low_threshold_percent),
        )
    return table


def render(report: Report, *, console: Console) -> None:
    """Print the report: a rich panel on a terminal, one JSON line otherwise."""
    if not console.is_terminal:
        console.file.write(json_line(report) + "\n")
        console.file.flush()
        return
    title = f"fleet report {report.window_end:%Y-%m-%d %H:%M:%S} UTC (last {report.window_s:g} s)"
    console.print(Panel(Group(_headline(report), _sites(report), _worst(report)), title=title))
