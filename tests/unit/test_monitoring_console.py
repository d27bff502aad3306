"""The console report (terminal and JSON line) and the Prometheus export of a report."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY, generate_latest
from rich.console import Console

from monitoring_service import metrics
from monitoring_service.console import json_line, make_console, render
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


def unit(unit_id: str, state: str, soc: float, *, stale: bool = False) -> UnitLine:
    return UnitLine(
        unit_id=unit_id,
        kind="megapack",
        group_id="SITE-01",
        state=state,
        soc_percent=soc,
        temperature_c=30.0,
        power_kw=-100.0,
        fault_codes=["CELL_OVERTEMP"] if state == "FAULT" else [],
        silent_s=99.0 if stale else 1.0,
        stale=stale,
    )


def a_report() -> Report:
    end = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    return Report(
        generated_at=end,
        window_start=end - timedelta(seconds=10),
        window_end=end,
        window_s=10,
        ingest=IngestFigures(
            megapack_readings=40,
            ev_readings=20,
            megapack_readings_per_s=4.0,
            ev_readings_per_s=2.0,
            lag_p50_ms=12.0,
            lag_p95_ms=40.0,
            gateway_requests_per_s=6.0,
            gateway_rejections_per_s=0.1,
            gateway_rejections={"401": 1},
            queue_depth=0,
            queue_consumers=1,
            dead_letters=0,
            gateway_sample=GatewaySample(scraped_at=end, requests={"megapack|202": 1}),
        ),
        soc=SocFigures(
            mean_percent=50.0,
            min_percent=8.0,
            max_percent=90.0,
            low_threshold_percent=15.0,
            units_low=1,
            sites=[
                SiteFigures(
                    site_id="SITE-UT",
                    units=2,
                    reporting=2,
                    energy_stored_mwh=3.5,
                    net_power_mw=-0.2,
                    charging_mw=0.2,
                    discharging_mw=0.0,
                )
            ],
        ),
        faults=FaultFigures(
            units_in_fault=1,
            new_faults=1,
            by_code={"CELL_OVERTEMP": 1},
            open_alerts={"critical": 1, "warning": 2, "info": 0},
            unacknowledged_alerts=3,
        ),
        units=UnitFigures(total=3, reporting=2, stale=1, megapacks=3, evs=0),
        evs=EvFigures(
            total=0,
            driving=0,
            charging=0,
            low_battery=0,
            critical_battery=0,
            low_threshold_percent=20.0,
            critical_threshold_percent=10.0,
        ),
        worst_units=[
            unit("MP-FAULTY", "FAULT", 50),
            unit("MP-SILENT", "IDLE", 60, stale=True),
            unit("MP-EMPTY", "IDLE", 8),
        ],
    )


def test_off_a_terminal_the_report_is_one_json_line() -> None:
    out = io.StringIO()
    render(a_report(), console=Console(file=out, force_terminal=False))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    decoded = json.loads(lines[0])
    assert decoded["soc"]["sites"][0]["energy_stored_mwh"] == 3.5
    assert decoded["faults"]["by_code"] == {"CELL_OVERTEMP": 1}
    assert "gateway_sample" not in decoded["ingest"]
    assert json.loads(json_line(a_report())) == decoded


def test_on_a_terminal_the_report_is_coloured_with_the_worst_units_first() -> None:
    console = Console(
        file=io.StringIO(), force_terminal=True, color_system="standard", width=160, record=True
    )
    render(a_report(), console=console)
    plain = console.export_text(styles=False, clear=False)
    assert plain.index("MP-FAULTY") < plain.index("MP-SILENT") < plain.index("MP-EMPTY")
    assert "SITE-UT" in plain
    assert "CELL_OVERTEMP×1" in plain
    coloured = console.export_text(styles=True)
    red, yellow = "\x1b[31m", "\x1b[33m"
    faulty_line = next(line for line in coloured.splitlines() if "MP-FAULTY" in line)
    empty_line = next(line for line in coloured.splitlines() if "MP-EMPTY" in line)
    assert red in faulty_line
    assert yellow in empty_line
    assert red not in empty_line


def test_only_operational_figures_with_bounded_labels_are_exported() -> None:
    metrics.export(a_report())

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    assert value("fleet_readings_per_second", kind="megapack") == 4.0
    assert value("fleet_units", status="stale") == 1.0
    assert value("fleet_open_alerts", severity="critical") == 1.0
    exposition = generate_latest(REGISTRY).decode()
    assert "SITE-UT" not in exposition  # no id from device input becomes a label
    for business in ("soc_percent", "energy", "power_mw", "fleet_evs", "units_in_fault"):
        assert business not in exposition


def test_report_format_chooses_panel_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "132")
    forced = make_console("console")
    assert forced.is_terminal
    assert forced.width == 132
    assert not make_console("json").is_terminal
