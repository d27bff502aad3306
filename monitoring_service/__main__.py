"""`python -m monitoring_service [serve | report --once [--json] | kpis ...]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import asyncpg

from common.broker import Broker
from common.db import create_pool
from common.http import serve
from common.logging import configure_logging
from common.settings import load_settings
from common.topology import Names
from monitoring_service.app import BROKER_WAIT_S, create_app, declare_monitoring
from monitoring_service.console import json_line, make_console, render
from monitoring_service.job import Monitor
from monitoring_service.kpi_cli import add_kpis_command, run_kpis
from monitoring_service.probes import BrokerQueueProbe, GatewayScraper
from monitoring_service.settings import MonitoringSettings, ReportSettings


async def report_once(settings: ReportSettings, *, as_json: bool) -> None:
    """Compute one report (read-only: no alert changes, nothing stored) and print it."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    broker = Broker(settings.amqp_url, Names(settings.amqp_prefix), declare=declare_monitoring)
    await broker.start()
    with contextlib.suppress(TimeoutError):  # without a broker the queue figures are null
        await broker.wait_connected(BROKER_WAIT_S)
    try:
        monitor = Monitor(
            pool=pool,
            settings=settings,
            gateway=GatewayScraper(
                urls=settings.gateway_targets, timeout_s=settings.gateway_scrape_timeout_s
            ),
            queues=BrokerQueueProbe(broker=broker),
        )
        await monitor.seed()
        report = await monitor.compute()
    finally:
        await broker.close()
        await pool.close()
    if as_json:
        print(json_line(report), flush=True)
    else:
        render(report, console=make_console(settings.report_format))


def main() -> None:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(
        prog="python -m monitoring_service",
        description="Fleet monitoring: scheduled reports, alerts and the read API "
        "(settings from the environment; see README).",
    )
    commands = parser.add_subparsers(dest="command")
    serve_command = commands.add_parser(
        "serve", help="run the scheduler and the HTTP API (default)"
    )
    serve_command.add_argument(
        "--port", type=int, help="listen port (default MONITORING_PORT or 8002)"
    )
    serve_command.add_argument("--host", default="0.0.0.0", help="listen address")
    report = commands.add_parser("report", help="print one report and exit (no HTTP)")
    report.add_argument("--once", action="store_true", required=True, help="one report, then exit")
    report.add_argument("--json", action="store_true", help="one JSON line, even on a terminal")
    add_kpis_command(commands)
    args = parser.parse_args()
    if args.command == "kpis":
        return run_kpis(args)
    if args.command == "report":
        report_settings = load_settings(ReportSettings, "monitoring_service")
        configure_logging(level=report_settings.log_level, fmt=report_settings.log_format)
        try:
            asyncio.run(report_once(report_settings, as_json=args.json))
        except (TimeoutError, OSError, asyncpg.PostgresError) as error:
            raise SystemExit(f"monitoring_service: cannot read the database: {error}") from None
        return
    settings = load_settings(MonitoringSettings, "monitoring_service")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    serve(
        create_app(settings),
        host=getattr(args, "host", "0.0.0.0"),
        port=getattr(args, "port", None) or settings.monitoring_port,
    )


if __name__ == "__main__":
    main()
