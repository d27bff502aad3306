"""Operator actions on alerts against the real database: shelve, unshelve, assign, filters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from db.monitoring_alert_actions import AlertFilter
from db.monitoring_outbox import unpublished_events
from monitoring_service import alert_handlers as handlers
from monitoring_service.alerting import evaluate_in_turn
from monitoring_service.job import thresholds_from
from tests.integration.test_monitoring_alerts import own_database_pool  # noqa: F401 (`pool`)
from tests.integration.test_monitoring_report import (  # noqa: F401 (`db`)
    add_megapack,
    own_database_connection,
    report_settings,
)


async def _hot_unit(db: asyncpg.Connection, pool: asyncpg.Pool, temperature_c: float) -> str:
    """A Megapack with an active `megapack_temp` alert; its id."""
    unit = f"ACT{uuid.uuid4().hex[:8]}-MP"
    await add_megapack(db, unit_id=unit, site_id=f"{unit}-SITE", at=datetime.now(UTC), soc=60,
                       temperature_c=temperature_c)  # fmt: skip
    await _evaluate(pool, unit)
    return unit


async def _evaluate(pool: asyncpg.Pool, unit: str) -> None:
    changes = await evaluate_in_turn(
        pool=pool, thresholds=thresholds_from(report_settings()), now=datetime.now(UTC),
    )  # fmt: skip
    assert changes is not None


def _where(**fields: object) -> AlertFilter:
    values: dict[str, object] = {
        "state": None, "severity": None, "site_id": None, "unit_id": None, "rule": None,
        "shelved": None, "cursor": None, **fields,
    }  # fmt: skip
    return handlers.list_filter(**values)  # type: ignore[arg-type]


async def _ids(pool: asyncpg.Pool, **fields: object) -> list[int]:
    page = await handlers.list_alerts(pool=pool, where=_where(**fields), limit=100)
    return [alert.alert_id for alert in page.items]


async def _outbox_events(pool: asyncpg.Pool, alert_id: int) -> list[str]:
    async with pool.acquire() as conn:
        rows = await unpublished_events(conn, limit=100_000)
    return [row["event"] for row in rows if f'"alert_id": {alert_id},' in row["payload"]]


async def test_a_shelved_alert_is_hidden_and_silent_until_unshelved(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    unit = await _hot_unit(db, pool, 48)
    (alert_id,) = await _ids(pool, unit_id=unit)
    shelved = await handlers.shelve(pool=pool, alert_id=alert_id, by="ops", for_s=3600,
                                    reason="sensor being replaced")  # fmt: skip
    assert (shelved.shelved, shelved.shelved_by, shelved.shelve_reason) == (
        True, "ops", "sensor being replaced",
    )  # fmt: skip
    assert shelved.shelved_until is not None
    assert await _ids(pool, state="active", unit_id=unit) == []
    assert await _ids(pool, state="active", unit_id=unit, shelved=True) == [alert_id]
    # while shelved it escalates: history has it, notifications do not
    await add_megapack(db, unit_id=unit, site_id=f"{unit}-SITE", at=datetime.now(UTC), soc=60,
                       temperature_c=60)  # fmt: skip
    await _evaluate(pool, unit)
    detail = await handlers.get_alert(pool=pool, alert_id=alert_id)
    assert [(e.event, e.silenced) for e in detail.events] == [
        ("raised", False), ("shelved", False), ("severity_changed", True),
    ]  # fmt: skip
    assert "severity_changed" not in await _outbox_events(pool, alert_id)
    unshelved = await handlers.unshelve(pool=pool, alert_id=alert_id, by="lead")
    assert (unshelved.shelved, unshelved.shelved_until) == (False, None)
    assert await _ids(pool, state="active", unit_id=unit) == [alert_id]
    detail = await handlers.get_alert(pool=pool, alert_id=alert_id)
    assert (detail.events[-1].event, detail.events[-1].by) == ("unshelved", "lead")
    again = await handlers.unshelve(pool=pool, alert_id=alert_id, by="lead")  # harmless
    assert len((await handlers.get_alert(pool=pool, alert_id=again.alert_id)).events) == 4


async def test_a_shelf_expires_by_itself_and_carries_over_to_a_new_episode(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    unit = await _hot_unit(db, pool, 48)
    (first,) = await _ids(pool, unit_id=unit)
    await handlers.shelve(pool=pool, alert_id=first, by="ops", for_s=3600, reason="known")
    # the episode ends (off-delay 10 s: evaluate twice, 11 s apart) and a new one starts
    thresholds = thresholds_from(report_settings())
    now = datetime.now(UTC)
    await add_megapack(db, unit_id=unit, site_id=f"{unit}-SITE", at=now, soc=60, temperature_c=20)
    for offset_s in (1, 12):
        await evaluate_in_turn(pool=pool, thresholds=thresholds,
                               now=now + timedelta(seconds=offset_s))  # fmt: skip
    later = now + timedelta(seconds=13)
    await add_megapack(db, unit_id=unit, site_id=f"{unit}-SITE", at=later, soc=60,
                       temperature_c=50)  # fmt: skip
    await evaluate_in_turn(pool=pool, thresholds=thresholds, now=later)
    second, old = await _ids(pool, unit_id=unit)
    assert old == first
    new = await handlers.get_alert(pool=pool, alert_id=second)
    assert (new.shelved, new.shelved_by, new.events[0].silenced) == (True, "ops", True)
    # the shelf runs out: the next evaluation records it
    await db.execute(
        "UPDATE alerts SET shelved_until = now() - interval '1 s' WHERE alert_id = ANY($1)",
        [first, second],
    )
    await _evaluate(pool, unit)
    for alert_id in (first, second):
        detail = await handlers.get_alert(pool=pool, alert_id=alert_id)
        assert (detail.shelved, detail.events[-1].event, detail.events[-1].by) == (
            False, "unshelved", None,
        )  # fmt: skip
    assert await _ids(pool, state="active", unit_id=unit) == [second, first]


async def test_assign_records_who_and_when_once(db: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    unit = await _hot_unit(db, pool, 48)
    (alert_id,) = await _ids(pool, unit_id=unit)
    assigned = await handlers.assign(pool=pool, alert_id=alert_id, by="ops", to="alice")
    assert (assigned.assigned_to, assigned.assigned_by) == ("alice", "ops")
    assert assigned.assigned_at is not None
    await handlers.assign(pool=pool, alert_id=alert_id, by="ops", to="alice")
    back = await handlers.assign(pool=pool, alert_id=alert_id, by="lead", to=None)
    assert (back.assigned_to, back.assigned_by) == (None, "lead")
    events = (await handlers.get_alert(pool=pool, alert_id=alert_id)).events
    assert [(e.event, e.by) for e in events] == [
        ("raised", None), ("assigned", "ops"), ("assigned", "lead"),
    ]  # fmt: skip
    assert await _outbox_events(pool, alert_id) == ["raised", "assigned", "assigned"]


async def test_filters_narrow_the_list(db: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    warm = await _hot_unit(db, pool, 48)
    hot = await _hot_unit(db, pool, 60)
    (warm_id,) = await _ids(pool, unit_id=warm)
    (hot_id,) = await _ids(pool, unit_id=hot)
    assert warm_id in await _ids(pool, severity="warning", rule="megapack_temp")
    assert warm_id not in await _ids(pool, severity="critical")
    assert await _ids(pool, site_id=f"{hot}-SITE") == [hot_id]
    assert await _ids(pool, site_id=f"{hot}-SITE", rule="megapack_fault") == []
    await handlers.acknowledge(pool=pool, alert_id=hot_id, by="ops")
    assert await _ids(pool, state="active_acknowledged", unit_id=hot) == [hot_id]
    assert await _ids(pool, state="active_unacknowledged", unit_id=hot) == []
    assert await _ids(pool, shelved=False, unit_id=hot) == [hot_id]


async def test_unknown_alerts_and_forbidden_actions_change_nothing(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    for action in (
        handlers.acknowledge(pool=pool, alert_id=2**62, by="ops"),
        handlers.unshelve(pool=pool, alert_id=2**62, by="ops"),
        handlers.assign(pool=pool, alert_id=2**62, by="ops", to="x"),
        handlers.shelve(pool=pool, alert_id=2**62, by="ops", for_s=1, reason="x"),
        handlers.get_alert(pool=pool, alert_id=2**62),
    ):
        with pytest.raises(handlers.NotFound):
            await action
    cleared = await db.fetchval(
        "INSERT INTO alerts (rule, unit_id, kind, severity, peak_severity, message, state) "
        "VALUES ('unit_stale', $1, 'ev', 'warning', 'warning', 'old', 'cleared') "
        "RETURNING alert_id",
        f"CLR{uuid.uuid4().hex[:8]}",
    )
    with pytest.raises(handlers.Conflict, match="nothing to shelve"):
        await handlers.shelve(pool=pool, alert_id=cleared, by="ops", for_s=60, reason="x")
    detail = await handlers.get_alert(pool=pool, alert_id=cleared)
    assert (detail.shelved, detail.events) == (False, [])
