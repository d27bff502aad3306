"""Unit alerts from what the unit reports, or fails to: stale, offline, fault codes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from monitoring_service.alerting import evaluate_in_turn
from monitoring_service.job import thresholds_from
from tests.integration.test_monitoring_alerts import alerts_of, own_database_pool  # noqa: F401
from tests.integration.test_monitoring_report import (  # noqa: F401 (`db`)
    add_megapack,
    own_database_connection,
    report_settings,
)


async def test_a_silent_unit_raises_unit_stale_until_it_reports(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    unit = f"STL{uuid.uuid4().hex[:8]}-MP"
    thresholds = thresholds_from(report_settings())  # STALE_AFTER_S 30
    now = datetime.now(UTC)
    await add_megapack(db, unit_id=unit, site_id="S", at=now - timedelta(seconds=45), soc=50)
    first = await evaluate_in_turn(pool=pool, thresholds=thresholds, now=now)
    await add_megapack(db, unit_id=unit, site_id="S", at=now - timedelta(seconds=1), soc=50)
    second = await evaluate_in_turn(pool=pool, thresholds=thresholds, now=now)
    assert first is not None
    assert second is not None
    rows = await alerts_of(db, unit)
    assert [(row["rule"], row["state"]) for row in rows] == [
        ("unit_stale", "cleared_unacknowledged")
    ]
    assert rows[0]["value"] == pytest.approx(45, abs=1)
    assert (first.raised, second.cleared) == ([rows[0]["alert_id"]], [rows[0]["alert_id"]])


async def test_a_megapack_reporting_offline_raises_until_it_reports_again(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    unit = f"OFF{uuid.uuid4().hex[:8]}-MP"
    thresholds = thresholds_from(report_settings())
    now = datetime.now(UTC)
    await add_megapack(db, unit_id=unit, site_id="S", at=now - timedelta(seconds=2), soc=50,
                       state="OFFLINE")  # fmt: skip
    first = await evaluate_in_turn(pool=pool, thresholds=thresholds, now=now)
    await add_megapack(db, unit_id=unit, site_id="S", at=now - timedelta(seconds=1), soc=50)
    second = await evaluate_in_turn(pool=pool, thresholds=thresholds, now=now)
    assert first is not None
    assert second is not None
    rows = await alerts_of(db, unit)
    assert [(row["rule"], row["state"]) for row in rows] == [
        ("megapack_offline", "cleared_unacknowledged")
    ]
    assert (first.raised, second.cleared) == ([rows[0]["alert_id"]], [rows[0]["alert_id"]])


async def test_new_fault_codes_update_the_open_fault_alert(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    unit = f"COD{uuid.uuid4().hex[:8]}-MP"
    thresholds = thresholds_from(report_settings())
    now = datetime.now(UTC)
    for offset, codes in ((3, ["BMS_COMM"]), (2, ["BMS_COMM", "GROUND_FAULT"])):
        await add_megapack(db, unit_id=unit, site_id="S", at=now - timedelta(seconds=offset),
                           soc=50, state="FAULT", codes=codes)  # fmt: skip
        await evaluate_in_turn(pool=pool, thresholds=thresholds, now=now)
    rows = await alerts_of(db, unit)
    assert [(row["rule"], row["state"]) for row in rows] == [
        ("megapack_fault", "active_unacknowledged")
    ]
    assert list(rows[0]["fault_codes"]) == ["BMS_COMM", "GROUND_FAULT"]
    assert rows[0]["message"].endswith("(BMS_COMM, GROUND_FAULT)")
