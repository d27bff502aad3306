"""The pure logic of an alert episode: one rule on one unit, step by step.

Each evaluation feeds a rule the unit's measurement (or nothing: the condition is not near),
the active alert of that rule and unit (if any) and the running timer, and gets back what to
do and the timer to keep. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitoring_service.rules import RANK, Rule, Severity


@dataclass(frozen=True, slots=True)
class Measurement:
    """A rule's input for one unit now (value None for a flag rule's state)."""

    rule: str
    unit_id: str
    kind: str
    site_id: str | None
    fleet_id: str | None
    value: float | None
    fault_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Episode:
    """The active alert of a rule and unit."""

    alert_id: int
    rule: str
    unit_id: str
    severity: Severity
    fault_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Timer:
    """A running on-delay (`holding_since`) or off-delay (`gone_since`); both None: idle."""

    holding_since: datetime | None = None
    holding_severity: Severity | None = None
    gone_since: datetime | None = None

    @property
    def idle(self) -> bool:
        return self.holding_since is None and self.gone_since is None


IDLE = Timer()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one step decided."""

    timer: Timer = IDLE
    raise_severity: Severity | None = None  # open an alert at this severity
    new_severity: Severity | None = None  # the active alert's severity changes to this
    clear: bool = False  # the active alert's condition is over
    new_fault_codes: tuple[str, ...] | None = None  # same episode, other codes (no event)


def target_severity(rule: Rule, value: float | None, current: Severity | None) -> Severity | None:
    """The highest level the value reaches; a level already held is kept inside the deadband."""
    result: Severity | None = None
    for level in rule.levels:
        if level.threshold is None:  # a flag rule: measured means the condition holds
            result = level.severity
            continue
        if value is None:
            continue
        held = current is not None and RANK[current] >= RANK[level.severity]
        if rule.direction == "above":
            reached = value >= level.threshold or (held and value > level.threshold - rule.deadband)
        else:
            reached = value < level.threshold or (held and value < level.threshold + rule.deadband)
        if reached:
            result = level.severity
    return result


def step(
    rule: Rule,
    *,
    measurement: Measurement | None,
    episode: Episode | None,
    timer: Timer,
    now: datetime,
) -> Outcome:
    """One evaluation of a rule on a unit."""
    current = episode.severity if episode is not None else timer.holding_severity
    target = target_severity(rule, measurement.value, current) if measurement is not None else None
    if episode is None:
        if target is None:
            return Outcome()
        since = timer.holding_since or now
        if (now - since).total_seconds() >= rule.on_delay_s:
            return Outcome(raise_severity=target)
        return Outcome(timer=Timer(holding_since=since, holding_severity=target))
    if target is None:
        gone = timer.gone_since or now
        if (now - gone).total_seconds() >= rule.off_delay_s:
            return Outcome(clear=True)
        return Outcome(timer=Timer(gone_since=gone))
    codes = measurement.fault_codes if measurement is not None else ()
    return Outcome(
        new_severity=target if target != episode.severity else None,
        new_fault_codes=codes if codes != episode.fault_codes else None,
    )


def message(rule: Rule, *, unit_id: str, severity: str, value: float | None,
            fault_codes: tuple[str, ...] = ()) -> str:  # fmt: skip
    """How an alert reads at a severity."""
    text = rule.text.format(value=value or 0.0, threshold=rule.threshold_of(severity) or 0.0)
    if fault_codes:
        text += f" ({', '.join(fault_codes)})"
    return f"{unit_id}: {text}"
