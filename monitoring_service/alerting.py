"""Alert evaluation: step every rule on every unit, then write what changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, cast

import asyncpg
import structlog

if TYPE_CHECKING:
    from db.monitoring import Conn

from db import monitoring_alerts as sql
from monitoring_service.episodes import (
    Episode,
    Measurement,
    Outcome,
    Timer,
    message,
    step,
)
from monitoring_service.rules import Rule, Severity, Thresholds, build_rules

log = structlog.get_logger("monitoring_service.alerting")

Key = tuple[str, str]  # (rule, unit_id)


@dataclass(slots=True)
class AlertChanges:
    """What one evaluation did."""

    raised: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)
    unshelved: list[int] = field(default_factory=list)


def near_bounds(rules: tuple[Rule, ...], thresholds: Thresholds) -> tuple[float, ...]:
    """The measurement query's bounds, in its parameter order (a disabled rule reads nothing)."""
    by_name = {rule.name: rule for rule in rules}
    order = (
        "megapack_temp", "megapack_low_soc", "unit_stale", "ev_battery_temp",
        "ev_battery_low", "ev_tire_pressure_low",
    )  # fmt: skip
    bounds: list[float] = []
    for name in order:
        rule = by_name.get(name)
        bound = rule.near_bound if rule is not None else None
        if name == "unit_stale":  # silence is measured only past the threshold (no deadband)
            bound = thresholds.stale_after_s if rule is not None else None
        bounds.append(bound if bound is not None else float("nan"))
    return tuple(bounds)


async def _load(
    conn: Conn, *, rules: tuple[Rule, ...], thresholds: Thresholds, now: datetime
) -> tuple[dict[Key, Measurement], dict[Key, Episode], dict[Key, Timer]]:
    rows = await sql.measurements(
        conn,
        now=now,
        enabled=tuple(rule.name for rule in rules),
        bounds=near_bounds(rules, thresholds),
    )
    measured = {
        (row["rule"], row["unit_id"]): Measurement(
            rule=row["rule"], unit_id=row["unit_id"], kind=row["kind"], site_id=row["site_id"],
            fleet_id=row["fleet_id"], value=row["value"], fault_codes=tuple(row["fault_codes"]),
        )
        for row in rows
    }  # fmt: skip
    active = {
        (row["rule"], row["unit_id"]): Episode(
            alert_id=row["alert_id"], rule=row["rule"], unit_id=row["unit_id"],
            severity=row["severity"], fault_codes=tuple(row["fault_codes"]),
        )
        for row in await sql.active_episodes(conn)
    }  # fmt: skip
    running = {
        (row["rule"], row["unit_id"]): Timer(
            holding_since=row["holding_since"],
            holding_severity=cast(Severity | None, row["holding_severity"]),
            gone_since=row["gone_since"],
        )
        for row in await sql.timers(conn)
    }
    return measured, active, running


async def _apply(
    conn: Conn,
    *,
    rule: Rule,
    key: Key,
    outcome: Outcome,
    measurement: Measurement | None,
    episode: Episode | None,
    now: datetime,
    changes: AlertChanges,
) -> None:
    unit_id = key[1]
    value = measurement.value if measurement is not None else None
    codes = measurement.fault_codes if measurement is not None else ()
    if outcome.raise_severity is not None and measurement is not None:
        severity = outcome.raise_severity
        alert_id = await sql.raise_alert(
            conn, rule=rule.name, unit_id=unit_id, kind=measurement.kind,
            site_id=measurement.site_id, fleet_id=measurement.fleet_id, severity=severity,
            message=message(rule, unit_id=unit_id, severity=severity, value=value,
                            fault_codes=codes),
            value=value, threshold=rule.threshold_of(severity), fault_codes=list(codes), at=now,
        )  # fmt: skip
        if alert_id is not None:
            changes.raised.append(alert_id)
            log.warning("alert_raised", rule=rule.name, unit_id=unit_id, alert_id=alert_id,
                        severity=severity)  # fmt: skip
    if episode is None:
        return
    if outcome.new_severity is not None:
        severity = outcome.new_severity
        before = await sql.change_severity(
            conn, alert_id=episode.alert_id, severity=severity,
            message=message(rule, unit_id=unit_id, severity=severity, value=value,
                            fault_codes=codes),
            value=value, threshold=rule.threshold_of(severity), at=now,
        )  # fmt: skip
        if before is not None:
            changes.changed.append(episode.alert_id)
            log.warning("alert_severity_changed", rule=rule.name, unit_id=unit_id,
                        alert_id=episode.alert_id, severity=severity, previous=before)  # fmt: skip
    elif outcome.new_fault_codes is not None:
        await sql.update_fault_codes(
            conn, alert_id=episode.alert_id, fault_codes=list(outcome.new_fault_codes),
            message=message(rule, unit_id=unit_id, severity=episode.severity, value=value,
                            fault_codes=outcome.new_fault_codes),
        )  # fmt: skip
    if outcome.clear and await sql.clear_alert(conn, alert_id=episode.alert_id, at=now):
        changes.cleared.append(episode.alert_id)
        log.info("alert_cleared", rule=rule.name, unit_id=unit_id, alert_id=episode.alert_id)


async def evaluate_alerts(*, conn: Conn, thresholds: Thresholds, now: datetime) -> AlertChanges:
    """Step every rule on every unit near its condition and write the changes.

    Runs inside the caller's transaction, which holds the evaluation lock.
    """
    rules = build_rules(thresholds)
    by_name = {rule.name: rule for rule in rules}
    measured, active, running = await _load(conn, rules=rules, thresholds=thresholds, now=now)
    changes = AlertChanges(unshelved=await sql.expire_shelves(conn))
    keep: list[tuple[str, str, datetime | None, str | None, datetime | None]] = []
    stop: list[Key] = []
    for key in sorted(set(measured) | set(active) | set(running)):
        rule = by_name.get(key[0])
        episode, timer = active.get(key), running.get(key, Timer())
        if rule is None:  # a disabled (or retired) rule: its episode ends, its timer goes
            outcome = Outcome(clear=True)
        else:
            outcome = step(rule, measurement=measured.get(key), episode=episode, timer=timer,
                           now=now)  # fmt: skip
            await _apply(conn, rule=rule, key=key, outcome=outcome, measurement=measured.get(key),
                         episode=episode, now=now, changes=changes)  # fmt: skip
        if (
            rule is None
            and episode is not None
            and await sql.clear_alert(conn, alert_id=episode.alert_id, at=now)
        ):
            changes.cleared.append(episode.alert_id)
        if outcome.timer.idle:
            if key in running:
                stop.append(key)
        elif outcome.timer != timer:
            t = outcome.timer
            keep.append((*key, t.holding_since, t.holding_severity, t.gone_since))
    await sql.save_timers(conn, running=keep, stopped=stop)
    return changes


async def evaluate_in_turn(
    *, pool: asyncpg.Pool, thresholds: Thresholds, now: datetime
) -> AlertChanges | None:
    """Evaluate in a transaction of its own; None when another instance is evaluating."""
    async with pool.acquire() as conn, conn.transaction():
        if not await sql.try_evaluation_lock(conn):
            return None
        return await evaluate_alerts(conn=conn, thresholds=thresholds, now=now)
