"""The monitoring service on databases of its own: reports per interval, CLI, HTTP API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from common.broker import Broker
from common.topology import Names, declare_telemetry
from monitoring_service.job import Monitor
from tests.integration.test_monitoring_report import (
    CAPACITY_KWH,
    add_known_fleet,
    report_settings,
)
from tests.support.stack import (
    OPERATOR_SECRET,
    ROOT,
    service_env,
)

OPS = {"X-API-Key": OPERATOR_SECRET}


def _report_cli(database_url: str, *, amqp_url: str, prefix: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "monitoring_service", "report", "--once", "--json"],
        cwd=ROOT,
        env={
            **service_env(database_url=database_url, amqp_url=amqp_url, prefix=prefix),
            "GATEWAY_URL": "http://127.0.0.1:1",
            "MONITOR_INTERVAL_S": "10",
            "STALE_AFTER_S": "30",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    report: dict[str, object] = json.loads(lines[0])
    return report


async def test_an_empty_database_gives_a_report_of_zeros(
    fresh_database: str, amqp_url: str, amqp_prefix: str
) -> None:
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    assert pool is not None
    try:
        report = await Monitor(pool=pool, settings=report_settings()).run_once()
        stored = await pool.fetchval("SELECT count(*) FROM monitoring_reports")
    finally:
        await pool.close()
    assert report is not None
    assert stored == 1
    assert report.units.model_dump() == {
        "total": 0, "reporting": 0, "stale": 0, "megapacks": 0, "evs": 0
    }  # fmt: skip
    assert report.ingest.megapack_readings_per_s == report.ingest.ev_readings_per_s == 0
    assert report.faults.units_in_fault == report.faults.new_faults == 0
    assert report.evs.total == report.soc.units_low == 0
    cli = await asyncio.to_thread(
        _report_cli, fresh_database, amqp_url=amqp_url, prefix=f"{amqp_prefix}none."
    )
    assert cli["units"] == {"total": 0, "reporting": 0, "stale": 0, "megapacks": 0, "evs": 0}
    assert cli["soc"]["sites"] == []  # type: ignore[index]
    assert cli["ingest"]["queue_depth"] is None  # type: ignore[index]  # no such queue


async def test_report_once_json_holds_the_figures(
    fresh_database: str, amqp_url: str, amqp_prefix: str
) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        await add_known_fleet(conn, "K-", datetime.now(UTC))
    finally:
        await conn.close()
    names = Names(f"{amqp_prefix}cli{uuid.uuid4().hex[:6]}.")
    broker = Broker(amqp_url, names, declare=declare_telemetry)
    await broker.start()
    await broker.wait_connected(10)
    try:
        for _ in range(2):
            await broker.publish(names.telemetry, "ev", b"x")
    finally:
        await broker.close()
    report = await asyncio.to_thread(
        _report_cli, fresh_database, amqp_url=amqp_url, prefix=names.prefix
    )
    assert report["ingest"]["queue_depth"] == 2  # type: ignore[index]
    assert report["ingest"]["queue_consumers"] == 0  # type: ignore[index]
    soc, units, evs = report["soc"], report["units"], report["evs"]
    assert isinstance(soc, dict)
    assert soc["mean_percent"] == pytest.approx(46.0)
    assert (soc["min_percent"], soc["max_percent"], soc["units_low"]) == (10, 80, 1)
    assert [site["site_id"] for site in soc["sites"]] == ["K-S1", "K-S2"]
    assert soc["sites"][0]["energy_stored_mwh"] == pytest.approx(0.9 * CAPACITY_KWH / 1000)
    assert units == {"total": 9, "reporting": 6, "stale": 3, "megapacks": 5, "evs": 4}
    assert isinstance(evs, dict)
    assert (evs["total"], evs["driving"], evs["charging"], evs["critical_battery"]) == (4, 1, 1, 1)
    assert report["faults"]["by_code"] == {"CELL_OVERTEMP": 2, "BMS_COMM": 1}  # type: ignore[index]


async def test_two_instances_store_one_report_per_interval(fresh_database: str) -> None:
    """Both instances run three times in each of five 1 s intervals, racing each time: every
    interval gets exactly one report (the instants are given, so no clock decides it)."""
    settings = report_settings(monitor_interval_s=1.0)
    pools = [await asyncpg.create_pool(fresh_database, min_size=1, max_size=2) for _ in range(2)]
    monitors = [Monitor(pool=p, settings=settings, instance=f"i{n}") for n, p in enumerate(pools)]
    first_slot = datetime.now(UTC).replace(microsecond=0)
    slots = [first_slot + timedelta(seconds=n) for n in range(5)]
    outcomes: list[bool] = []
    try:
        for slot in slots:
            for offset_s in (0.1, 0.5, 0.9):
                now = slot + timedelta(seconds=offset_s)
                results = await asyncio.gather(*(m.run_once(now=now) for m in monitors))
                outcomes.extend(result is not None for result in results)
        rows = await pools[0].fetch(
            "SELECT slot_start, count(*) AS reports FROM monitoring_reports"
            " GROUP BY slot_start ORDER BY slot_start"
        )
    finally:
        for p in pools:
            await p.close()
    assert len(outcomes) == 30
    assert outcomes.count(True) == 5  # one run stored per interval, the 25 others stood down
    assert [(row["slot_start"], row["reports"]) for row in rows] == [(s, 1) for s in slots]


async def test_a_stored_report_of_an_older_shape_does_not_stop_the_service(
    fresh_database: str,
) -> None:
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    assert pool is not None
    try:
        await pool.execute(
            "INSERT INTO monitoring_reports (slot_start, window_start, window_end, instance, "
            "report) VALUES (now() - interval '1 hour', now(), now(), 'old', '{\"old\": 1}')"
        )
        monitor = Monitor(pool=pool, settings=report_settings())
        await monitor.seed()
        assert monitor.latest is None
        assert await monitor.run_once() is not None
    finally:
        await pool.close()
