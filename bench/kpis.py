"""`python -m bench.kpis`: how long `GET /v1/kpis` takes over a month of a site's telemetry.

Creates a scratch database on the server of `--database-url` (TimescaleDB or PostgreSQL, the
migrations pick the flavour), fills it with SQL `generate_series`: one site of `--units` units,
`--days` days at one reading every `--interval-s` seconds (20 x 30 d / 10 s = 5,184,000 rows; a
daily cycle: charging 02:00-06:00, discharging 17:00-21:00, standby otherwise, one unit in
FAULT an hour a day), then times the KPI computation of the API for the whole range in daily
buckets: "cold" is the first query on a fresh connection after the data was written (the
server's caches are not emptied: the machine's PostgreSQL is shared), "warm" the median of the
next rounds. On TimescaleDB the continuous aggregate is refreshed first (timed) and the raw
path is timed as well for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from db.migrate import migrate
from monitoring_service.kpi_handler import KpiQuery, KpiSettings, compute_kpis

SITE = "SITE-BENCH"
FILL = """
INSERT INTO megapack_telemetry (unit_id, time, site_id, soc_percent, soh_percent, power_kw,
    voltage_v, current_a, temperature_c, state, fault_codes, received_at)
SELECT 'BENCH-' || lpad(u::text, 3, '0'), t, $5, soc, 98.5, p, 900.0, p * 1000 / 900.0, 25.0,
       st, '{}', t
FROM generate_series(1, $1::int) AS u,
     generate_series($2::timestamptz, $3::timestamptz - interval '1 microsecond',
                     make_interval(secs => $4)) AS t,
     LATERAL (SELECT extract(hour FROM t)::int AS h,
                     (extract(epoch FROM t)::bigint % 3600) / 3600.0 AS f) AS clock,
     LATERAL (SELECT
         CASE WHEN h = 9 AND u = 1 + extract(day FROM t)::int % $1::int THEN 'FAULT'
              WHEN h BETWEEN 2 AND 5 THEN 'CHARGING' WHEN h BETWEEN 17 AND 20 THEN 'DISCHARGING'
              ELSE 'STANDBY' END AS st,
         CASE WHEN h BETWEEN 2 AND 5 THEN 10 + 20 * (h - 2 + f)
              WHEN h BETWEEN 6 AND 16 THEN 90
              WHEN h BETWEEN 17 AND 20 THEN 90 - 20 * (h - 17 + f) ELSE 10 END AS soc) AS s,
     LATERAL (SELECT CASE st WHEN 'FAULT' THEN 0.0 WHEN 'CHARGING' THEN -1900.0
                  WHEN 'DISCHARGING' THEN 1780.0 ELSE -5.0 - u % 3 END AS p) AS power
"""
UNITS = """
INSERT INTO units (unit_id, kind, site_id, last_seen, last_state, last_soc_percent, capacity_kwh)
SELECT 'BENCH-' || lpad(u::text, 3, '0'), 'megapack', $2, $3, 'STANDBY', 10, 3916.0
FROM generate_series(1, $1::int) AS u
"""


async def _timed_query(url: str, settings: KpiSettings, start: datetime, end: datetime) -> float:
    conn = await asyncpg.connect(url)
    try:
        began = time.perf_counter()
        report = await compute_kpis(
            conn=conn,
            query=KpiQuery("site", SITE, start, end, "1d"),
            settings=settings,
            now=end,
        )
        elapsed = time.perf_counter() - began
        assert len(report.items) == (end - start).days
        return elapsed
    finally:
        await conn.close()


async def _fill(
    url: str, *, units: int, days: int, interval_s: float, start: datetime
) -> dict[str, Any]:
    """Write the telemetry (and refresh the aggregate on TimescaleDB), timed."""
    conn = await asyncpg.connect(url)
    results: dict[str, Any] = {"units": units, "days": days, "interval_s": interval_s}
    try:
        began = time.perf_counter()
        for day in range(days):  # a day per statement: bounded memory
            first = start + timedelta(days=day)
            await conn.execute(FILL, units, first, first + timedelta(days=1), interval_s, SITE)
        await conn.execute(UNITS, units, SITE, start + timedelta(days=days))
        await conn.execute("ANALYZE megapack_telemetry")
        results["rows"] = await conn.fetchval("SELECT count(*) FROM megapack_telemetry")
        results["fill_s"] = round(time.perf_counter() - began, 1)
        timescale = await conn.fetchval("SELECT to_regclass('megapack_kpi_1h') IS NOT NULL")
        results["flavour"] = "timescale" if timescale else "postgres"
        if timescale:
            began = time.perf_counter()
            await conn.execute("CALL refresh_continuous_aggregate('megapack_kpi_1h', NULL, NULL)")
            results["aggregate_refresh_s"] = round(time.perf_counter() - began, 1)
    finally:
        await conn.close()
    return results


async def measure(
    server_url: str, *, units: int, days: int, interval_s: float, rounds: int
) -> dict[str, Any]:
    """Fill a scratch database, time the KPI queries, drop it; returns the figures."""
    url = f"{server_url.rstrip('/')}/megapack_kpis_{uuid.uuid4().hex[:8]}"
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    await migrate(url, retention_days=days + 30)
    try:
        results = await _fill(url, units=units, days=days, interval_s=interval_s, start=start)
        paths = {"aggregate": 30.0, "raw": 31.0} if results["flavour"] == "timescale" else {}
        for path, stale_after_s in (paths or {"raw": 30.0}).items():
            settings = KpiSettings(stale_after_s, 3916.0, interval_s)
            timings = [await _timed_query(url, settings, start, end) for _ in range(rounds + 1)]
            results[path] = {
                "cold_s": round(timings[0], 3),
                "warm_median_s": round(statistics.median(timings[1:]), 3),
                "warm_s": [round(t, 3) for t in timings[1:]],
            }
    finally:
        base, name = url.rsplit("/", 1)
        admin = await asyncpg.connect(f"{base}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return results


def print_results(console: Console, results: dict[str, Any]) -> None:
    """One table: fill time, refresh time, cold and warm latency per path."""
    table = Table(
        title=f"KPIs, site of {results['units']} units, {results['days']} days at "
        f"{results['interval_s']:g} s ({results['rows']:,} rows, {results['flavour']}), 1d buckets",
        title_justify="left",
    )
    for column in ("path", "cold s", "warm median s", "warm runs s"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for path in ("aggregate", "raw"):
        if path in results:
            figures = results[path]
            runs = ", ".join(f"{t:.3f}" for t in figures["warm_s"])
            table.add_row(path, f"{figures['cold_s']:.3f}", f"{figures['warm_median_s']:.3f}", runs)
    console.print(table)
    refresh = results.get("aggregate_refresh_s")
    console.print(
        f"filled in {results['fill_s']} s"
        + (f"; continuous aggregate refreshed in {refresh} s" if refresh is not None else "")
    )


def main() -> None:
    """Parse, measure, print."""
    parser = argparse.ArgumentParser(prog="python -m bench.kpis", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/megapack"),
        help="server to use (its database name is ignored: a scratch one is made and dropped)",
    )
    parser.add_argument("--units", type=int, default=20, help="units of the site (20)")
    parser.add_argument("--days", type=int, default=30, help="days of telemetry (30)")
    parser.add_argument("--interval-s", type=float, default=10.0, help="reading period (10)")
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds after the cold one")
    args = parser.parse_args()
    if args.units < 1 or not 1 <= args.days <= 366 or args.interval_s <= 0 or args.rounds < 1:
        parser.error("--units >= 1, --days 1-366, --interval-s > 0, --rounds >= 1")
    server = args.database_url.rsplit("/", 1)[0]
    results = asyncio.run(
        measure(
            server,
            units=args.units,
            days=args.days,
            interval_s=args.interval_s,
            rounds=args.rounds,
        )
    )
    print_results(Console(width=None if Console().is_terminal else 150), results)


if __name__ == "__main__":
    main()
