"""The KPI line of the console report and the `kpis` command, on the crafted telemetry."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from rich.console import Console

from monitoring_service.console import render
from monitoring_service.report import compute_report
from tests.integration.test_monitoring_report import report_settings
from tests.support.energy import rte_percent_of
from tests.support.kpi_profile import DAY, SITE


@pytest.fixture
async def conn(profile_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(profile_url)
    yield connection
    await connection.close()


async def test_report_carries_the_day_so_far(conn: asyncpg.Connection, profile_url: str) -> None:
    settings = report_settings(database_url=profile_url, telemetry_interval_s=10.0)
    end = DAY + timedelta(hours=6)
    report = await compute_report(conn=conn, settings=settings, end=end)
    line = report.kpis_today
    assert line is not None
    assert line.day == DAY
    # As in test_daily_site_figures_by_hand: 530 kWh in, 400 out, 40 left stored.
    assert line.energy_charged_kwh == pytest.approx(530.0, abs=1e-9)
    assert line.energy_discharged_kwh == pytest.approx(400.0, abs=1e-9)
    assert line.rte_percent == pytest.approx(rte_percent_of(530.0, 400.0, 39.36), abs=1e-9)
    # Up to 06:00 the period is 2 units * 21600 s; 31190 s of it in service.
    assert line.availability_percent == pytest.approx(31190.0 / 43200.0 * 100, abs=1e-9)
    # K1's 04:19:50-04:40:00, then both units silent from 05:00:00 to 06:00.
    assert line.gap_count == 3
    out = io.StringIO()
    render(report, console=Console(file=out, force_terminal=True, width=160))
    assert "kpis today" in out.getvalue()
    assert "in 0.53 MWh  out 0.40 MWh  RTE 82.2 %" in out.getvalue()
    # The line is kept for a while rather than recomputed on every report.
    again = await compute_report(conn=conn, settings=settings, end=end)
    assert again.kpis_today is line


def _kpis(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "TELEMETRY_INTERVAL_S": "10", "STALE_AFTER_S": "30"}
    return subprocess.run(
        [sys.executable, "-m", "monitoring_service", "kpis", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_kpis_command(profile_url: str) -> None:
    span = ["--from", "2026-11-02T00:00:00Z", "--to", "2026-11-02T05:00:00Z", "--bucket", "1h"]
    shown = _kpis(profile_url, "--site", SITE, *span, "--json")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["from"] == "2026-11-02T00:00:00Z"
    assert [item["energy_charged_kwh"] for item in body["items"]] == [506.0, 6.0, 6.0, 6.0, 6.0]
    table = _kpis(profile_url, "--unit", "KPI-K1", *span)
    assert table.returncode == 0, table.stderr
    assert "KPIs of unit KPI-K1" in table.stdout
    assert "2026-11-02 04:00" in table.stdout
    rows = list(csv.DictReader(io.StringIO(_kpis(profile_url, "--fleet", *span, "--csv").stdout)))
    assert [row["time_in_state_fault_s"] for row in rows] == ["0.0", "0.0", "3600.0", "0.0", "0.0"]
    unknown = _kpis(profile_url, "--site", "SITE-NONE", *span)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "monitoring_service kpis: unknown site 'SITE-NONE': no Megapack reported as it"
    )
    backwards = _kpis(profile_url, "--fleet", "--from", "2026-11-03", "--to", "2026-11-02")
    assert backwards.stderr.strip() == "monitoring_service kpis: `from` must be before `to`"
