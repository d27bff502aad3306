"""Alert episodes: one alert per episode, whatever restarts and concurrent instances do."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aio_pika
import asyncpg
import pytest

from common.broker import Broker
from common.topology import Names, declare_exchange
from db.monitoring_alert_actions import acknowledge
from monitoring_service.alerting import evaluate_in_turn
from monitoring_service.app import declare_monitoring
from monitoring_service.job import thresholds_from
from monitoring_service.outbox import publish_events
from tests.integration.test_monitoring_report import (  # noqa: F401 (`db`)
    add_ev,
    add_megapack,
    own_database_connection,
    report_settings,
)

RULE = "ev_battery_temp"


@pytest.fixture
async def alerts_feed(
    amqp_url: str, amqp_prefix: str
) -> AsyncIterator[tuple[Broker, asyncio.Queue[dict[str, object]]]]:
    """A broker on this run's prefix and every alert event published on it, decoded."""
    broker = Broker(amqp_url, Names(amqp_prefix), declare=declare_monitoring)
    await broker.start()
    await broker.wait_connected(10)
    channel = broker.channel
    exchange = await declare_exchange(channel, broker.names.alerts)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="alert.#")
    events: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            event = json.loads(message.body)
            event["routing_key"] = message.routing_key
            await events.put(event)

    await queue.consume(on_message)
    yield broker, events
    await broker.close()


async def _publish_all(pool: asyncpg.Pool, broker: Broker) -> None:
    async def publish(*, routing_key: str, body: bytes, message_id: str) -> None:
        await broker.publish(broker.names.alerts, routing_key, body, message_id=message_id)

    await publish_events(pool=pool, publish=publish)


async def _events_for(
    events: asyncio.Queue[dict[str, object]], unit_id: str, count: int
) -> list[dict[str, object]]:
    """The next `count` events of one unit (others are skipped)."""
    found: list[dict[str, object]] = []
    while len(found) < count:
        event = await asyncio.wait_for(events.get(), 10)
        if event["unit_id"] == unit_id:
            found.append(event)
    return found


async def alerts_of(db: asyncpg.Connection, unit_id: str) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM alerts WHERE unit_id = $1 ORDER BY alert_id", unit_id)


@pytest.fixture(name="pool")
async def own_database_pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's own database (the one `db` is connected to)."""
    created = await asyncpg.create_pool(fresh_database, min_size=1, max_size=3)
    assert created is not None
    yield created
    await created.close()


async def _history(db: asyncpg.Connection, alert_id: int) -> list[tuple[str, str | None]]:
    rows = await db.fetch(
        "SELECT event, severity FROM alert_events WHERE alert_id = $1 ORDER BY event_id",
        alert_id,
    )
    return [(row["event"], row["severity"]) for row in rows]


async def test_a_hot_episode_is_one_alert_warning_then_critical_then_cleared(
    db: asyncpg.Connection,
    pool: asyncpg.Pool,
    alerts_feed: tuple[Broker, asyncio.Queue[dict[str, object]]],
) -> None:
    """The issue's case: heating to 70 °C for a few seconds, then 25 °C: one alert."""
    broker, events = alerts_feed
    unit = f"HOT{uuid.uuid4().hex[:8]}-MP"
    thresholds = thresholds_from(report_settings())
    start = datetime.now(UTC) - timedelta(seconds=60)
    temperatures = [25, 48, 62, 70, 70, 70, 25, 25, 25]  # one reading every 5 s
    for tick, temperature in enumerate(temperatures):
        at = start + timedelta(seconds=5 * tick)
        await add_megapack(db, unit_id=unit, site_id="S", at=at, soc=60,
                           temperature_c=temperature)  # fmt: skip
        changes = await evaluate_in_turn(
            pool=pool, thresholds=thresholds, now=at + timedelta(milliseconds=500),
        )  # fmt: skip
        assert changes is not None
        await _publish_all(pool, broker)

    rows = await alerts_of(db, unit)
    assert [(row["rule"], row["state"]) for row in rows] == [
        ("megapack_temp", "cleared_unacknowledged")
    ]
    assert (rows[0]["severity"], rows[0]["peak_severity"]) == ("critical", "critical")
    assert await _history(db, rows[0]["alert_id"]) == [
        ("raised", "warning"), ("severity_changed", "critical"), ("cleared", "critical"),
    ]  # fmt: skip
    raised, changed, cleared = await _events_for(events, unit, 3)
    assert [(e["event"], e["routing_key"], e["severity"]) for e in (raised, changed, cleared)] == [
        ("raised", "alert.raised.megapack_temp", "warning"),
        ("severity_changed", "alert.severity_changed.megapack_temp", "critical"),
        ("cleared", "alert.cleared.megapack_temp", "critical"),
    ]
    assert changed["previous_severity"] == "warning"
    assert len({e["event_id"] for e in (raised, changed, cleared)}) == 3
    assert {e["alert_id"] for e in (raised, changed, cleared)} == {rows[0]["alert_id"]}
    with pytest.raises(TimeoutError):  # nothing else about this unit
        await asyncio.wait_for(_events_for(events, unit, 1), 1)


async def test_an_ev_battery_chattering_at_its_threshold_makes_one_alert(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    vehicle = f"CHT{uuid.uuid4().hex[:8]}-EV"
    thresholds = thresholds_from(report_settings())  # warning 50 °C, critical 58 °C, deadband 2
    start = datetime.now(UTC) - timedelta(seconds=40)
    for second, temperature in enumerate([57.5, 58.2, 57.6, 58.4, 57.1, 58.0, 56.9, 58.6] * 4):
        at = start + timedelta(seconds=second)
        await add_ev(db, vehicle_id=vehicle, fleet_id="F", at=at, soc=70,
                     temperature_c=temperature)  # fmt: skip
        now = at + timedelta(milliseconds=500)
        await evaluate_in_turn(pool=pool, thresholds=thresholds, now=now)
    rows = await alerts_of(db, vehicle)
    assert [(row["rule"], row["severity"], row["state"]) for row in rows] == [
        (RULE, "critical", "active_unacknowledged")
    ]
    # warning first (57.5 °C), critical at 58.2 °C, and no flapping back and forth after that
    assert await _history(db, rows[0]["alert_id"]) == [
        ("raised", "warning"), ("severity_changed", "critical"),
    ]  # fmt: skip


async def test_a_restart_mid_episode_keeps_one_alert(
    db: asyncpg.Connection, fresh_database: str
) -> None:
    unit = f"RST{uuid.uuid4().hex[:8]}-MP"
    thresholds = thresholds_from(report_settings())
    now = datetime.now(UTC)
    await add_megapack(db, unit_id=unit, site_id="S", at=now - timedelta(seconds=2), soc=50,
                       temperature_c=47)  # fmt: skip
    for _ in range(2):  # each pass is a fresh process: nothing carried over but the database
        fresh = await asyncpg.create_pool(fresh_database, min_size=1, max_size=1)
        assert fresh is not None
        try:
            await evaluate_in_turn(pool=fresh, thresholds=thresholds, now=now)
        finally:
            await fresh.close()
    rows = await alerts_of(db, unit)
    assert [(row["rule"], row["state"]) for row in rows] == [
        ("megapack_temp", "active_unacknowledged")
    ]
    events = await db.fetchval(
        "SELECT count(*) FROM alert_events WHERE alert_id = $1", rows[0]["alert_id"]
    )
    assert events == 1


async def test_two_instances_evaluating_together_raise_one_alert(
    db: asyncpg.Connection, fresh_database: str
) -> None:
    unit = f"TWO{uuid.uuid4().hex[:8]}-MP"
    thresholds = thresholds_from(report_settings())
    now = datetime.now(UTC)
    await add_megapack(db, unit_id=unit, site_id="S", at=now, soc=5, state="FAULT",
                       codes=["BMS_COMM"])  # fmt: skip
    pools = [await asyncpg.create_pool(fresh_database, min_size=1, max_size=1) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(evaluate_in_turn(pool=p, thresholds=thresholds, now=now)
              for p in pools if p is not None)
        )  # fmt: skip
    finally:
        for p in pools:
            assert p is not None
            await p.close()
    raised = sum(len(result.raised) for result in results if result is not None)
    rows = await alerts_of(db, unit)
    assert sorted(row["rule"] for row in rows) == ["megapack_fault", "megapack_low_soc"]
    assert raised == 2
    fault = next(row for row in rows if row["rule"] == "megapack_fault")
    assert list(fault["fault_codes"]) == ["BMS_COMM"]


async def test_the_database_refuses_a_second_open_alert(db: asyncpg.Connection) -> None:
    unit = f"UNQ{uuid.uuid4().hex[:8]}"
    insert = (
        "INSERT INTO alerts (rule, unit_id, kind, severity, peak_severity, message) "
        "VALUES ('unit_stale', $1, 'ev', 'warning', 'warning', 'silent')"
    )
    await db.execute(insert, unit)
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(insert, unit)
    # a new episode may start while the last one is still listed (cleared, unacknowledged)
    await db.execute("UPDATE alerts SET state = 'cleared_unacknowledged' WHERE unit_id = $1", unit)
    await db.execute(insert, unit)
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE unit_id = $1", unit) == 2


async def test_acknowledging_moves_an_active_or_a_cleared_alert_once(
    db: asyncpg.Connection,
) -> None:
    unit = f"ACK{uuid.uuid4().hex[:8]}"
    insert = (
        "INSERT INTO alerts (rule, unit_id, kind, severity, peak_severity, message, state) "
        "VALUES ($2, $1, 'ev', 'warning', 'warning', 'silent', $3) RETURNING alert_id"
    )
    active = await db.fetchval(insert, unit, "unit_stale", "active_unacknowledged")
    cleared = await db.fetchval(insert, unit, "ev_battery_low", "cleared_unacknowledged")
    assert await acknowledge(db, alert_id=active, by="ops") == "active_acknowledged"
    assert await acknowledge(db, alert_id=active, by="other") == "active_acknowledged"
    assert await acknowledge(db, alert_id=cleared, by="ops") == "cleared"
    row = await db.fetchrow("SELECT * FROM alerts WHERE alert_id = $1", active)
    assert row is not None
    assert row["acknowledged_by"] == "ops"
    assert row["acknowledged_at"] is not None
    assert await _history(db, active) == [("acknowledged", "warning")]  # not twice
    assert await acknowledge(db, alert_id=2**62, by="ops") is None


async def test_an_on_delay_running_when_the_service_restarts_is_not_forgotten(
    db: asyncpg.Connection, fresh_database: str
) -> None:
    unit = f"DLY{uuid.uuid4().hex[:8]}-MP"
    settings = report_settings(alert_rule_tuning="megapack_temp.on_delay_s=20")
    thresholds = thresholds_from(settings)
    start = datetime.now(UTC) - timedelta(seconds=30)
    await add_megapack(db, unit_id=unit, site_id="S", at=start, soc=50, temperature_c=47)
    for offset_s in (0, 10, 20):  # a fresh process each time: nothing kept but the database
        fresh = await asyncpg.create_pool(fresh_database, min_size=1, max_size=1)
        assert fresh is not None
        try:
            changes = await evaluate_in_turn(
                pool=fresh, thresholds=thresholds, now=start + timedelta(seconds=offset_s),
            )  # fmt: skip
        finally:
            await fresh.close()
        assert changes is not None
        assert bool(changes.raised) == (offset_s == 20)  # raised on time, not 20 s late
    rows = await alerts_of(db, unit)
    assert [row["rule"] for row in rows] == ["megapack_temp"]
    timers = await db.fetchval("SELECT count(*) FROM alert_timers WHERE unit_id = $1", unit)
    assert timers == 0
