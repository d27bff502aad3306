"""Alert episodes: evaluate the rules, raise and clear in the database, publish the events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import asyncpg

if TYPE_CHECKING:
    from db.monitoring import Conn
import structlog

from db import monitoring_alerts as sql
from monitoring_service.rules import (
    Condition,
    OpenAlert,
    Thresholds,
    changed_fault_codes,
    episodes,
    routing_key,
)

log = structlog.get_logger("monitoring_service.alerting")

PUBLISH_BATCH = 100


class EventPublisher(Protocol):
    """Publishes one alert event and waits for the broker's confirm (raises when it cannot)."""

    async def __call__(self, *, routing_key: str, body: bytes, message_id: str) -> None: ...


@dataclass(slots=True)
class AlertChanges:
    """What one evaluation did."""

    raised: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)


def _threshold_args(thresholds: Thresholds) -> tuple[float, ...]:
    return (
        thresholds.megapack_low_soc_percent,
        thresholds.megapack_temp_high_c,
        thresholds.megapack_temp_critical_c,
        thresholds.stale_after_s,
        thresholds.ev_battery_temp_c,
        thresholds.ev_tire_pressure_psi,
        thresholds.ev_battery_percent,
    )


async def evaluate_alerts(
    *, conn: Conn, thresholds: Thresholds, now: datetime, unit_prefix: str = ""
) -> AlertChanges:
    """Raise the alerts whose condition started and clear those whose condition ended.

    Runs inside the caller's transaction, which holds the evaluation lock.
    """
    rows = await sql.current_conditions(
        conn,
        unit_prefix=unit_prefix,
        now=now,
        enabled=thresholds.enabled,
        thresholds=_threshold_args(thresholds),
    )
    conditions = [
        Condition(
            rule=row["rule"],
            unit_id=row["unit_id"],
            kind=row["kind"],
            site_id=row["site_id"],
            fleet_id=row["fleet_id"],
            value=row["value"],
            threshold=row["threshold"],
            fault_codes=tuple(row["fault_codes"]),
        )
        for row in rows
    ]
    open_now = [
        OpenAlert(
            alert_id=row["alert_id"],
            rule=row["rule"],
            unit_id=row["unit_id"],
            fault_codes=tuple(row["fault_codes"]),
        )
        for row in await sql.open_alerts(conn, unit_prefix=unit_prefix)
    ]
    to_raise, to_clear = episodes(conditions, open_now)
    changes = AlertChanges()
    for condition in to_raise:
        alert_id = await sql.raise_alert(
            conn,
            rule=condition.rule,
            unit_id=condition.unit_id,
            kind=condition.kind,
            site_id=condition.site_id,
            fleet_id=condition.fleet_id,
            severity=condition.severity,
            message=condition.message,
            value=condition.value,
            threshold=condition.threshold,
            fault_codes=list(condition.fault_codes),
        )
        if alert_id is not None:
            changes.raised.append(alert_id)
            log.warning(
                "alert_raised", rule=condition.rule, unit_id=condition.unit_id, alert_id=alert_id
            )
    for alert, condition in changed_fault_codes(conditions, open_now):
        await sql.update_fault_codes(
            conn,
            alert_id=alert.alert_id,
            fault_codes=list(condition.fault_codes),
            message=condition.message,
        )
    for alert in to_clear:
        if await sql.clear_alert(conn, alert_id=alert.alert_id):
            changes.cleared.append(alert.alert_id)
            log.info(
                "alert_cleared", rule=alert.rule, unit_id=alert.unit_id, alert_id=alert.alert_id
            )
    return changes


async def evaluate_in_turn(
    *, pool: asyncpg.Pool, thresholds: Thresholds, now: datetime, unit_prefix: str = ""
) -> AlertChanges | None:
    """Evaluate in a transaction of its own; None when another instance is evaluating."""
    async with pool.acquire() as conn, conn.transaction():
        if not await sql.try_evaluation_lock(conn):
            return None
        return await evaluate_alerts(
            conn=conn, thresholds=thresholds, now=now, unit_prefix=unit_prefix
        )


async def publish_events(*, pool: asyncpg.Pool, publish: EventPublisher) -> int:
    """Publish the outbox in order, marking each batch once confirmed; returns how many."""
    published = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            events = await sql.claim_unpublished_events(conn, limit=PUBLISH_BATCH)
            if not events:
                return published
            for event in events:
                await publish(
                    routing_key=routing_key(event["event"], event["rule"]),
                    body=event["payload"].encode(),
                    message_id=f"alert-event-{event['event_id']}",
                )
            await sql.mark_published(conn, event_ids=[event["event_id"] for event in events])
            published += len(events)
