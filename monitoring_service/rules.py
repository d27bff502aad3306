"""Alert rules and the pure logic of episodes: which alerts to raise and which to clear."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: what it watches and how bad it is."""

    name: str
    kind: Literal["megapack", "ev", "any"]
    severity: Severity
    text: str  # how the message reads; `{value}` and `{threshold}` are filled in


RULES: tuple[Rule, ...] = (
    Rule("megapack_low_soc", "megapack", "warning", "SOC {value:.1f} % under {threshold:g} %"),
    Rule(
        "megapack_temp_high", "megapack", "warning", "temperature {value:.1f} °C ≥ {threshold:g} °C"
    ),
    Rule(
        "megapack_temp_critical",
        "megapack",
        "critical",
        "temperature {value:.1f} °C ≥ {threshold:g} °C",
    ),
    Rule("megapack_fault", "megapack", "critical", "in FAULT"),
    Rule("megapack_offline", "megapack", "warning", "reports OFFLINE"),
    Rule("unit_stale", "any", "warning", "silent for {value:.0f} s (≥ {threshold:g} s)"),
    Rule("ev_battery_over_temp", "ev", "critical", "battery {value:.1f} °C ≥ {threshold:g} °C"),
    Rule("ev_tire_pressure_low", "ev", "warning", "tire pressure {value:.1f} psi < {threshold:g}"),
    Rule("ev_battery_low", "ev", "warning", "battery {value:.1f} % under {threshold:g} %"),
)
RULE_NAMES: tuple[str, ...] = tuple(rule.name for rule in RULES)
RULES_BY_NAME = {rule.name: rule for rule in RULES}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where each rule fires (from settings); a rule absent from `enabled` never fires."""

    megapack_low_soc_percent: float
    megapack_temp_high_c: float
    megapack_temp_critical_c: float
    stale_after_s: float
    ev_battery_temp_c: float
    ev_tire_pressure_psi: float
    ev_battery_percent: float
    enabled: tuple[str, ...] = RULE_NAMES


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule that holds for a unit right now."""

    rule: str
    unit_id: str
    kind: str
    site_id: str | None
    fleet_id: str | None
    value: float | None
    threshold: float | None
    fault_codes: tuple[str, ...] = ()

    @property
    def severity(self) -> Severity:
        return RULES_BY_NAME[self.rule].severity

    @property
    def message(self) -> str:
        text = RULES_BY_NAME[self.rule].text.format(
            value=self.value or 0.0, threshold=self.threshold or 0.0
        )
        if self.fault_codes:
            text += f" ({', '.join(self.fault_codes)})"
        return f"{self.unit_id}: {text}"


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert not cleared yet (active or acknowledged)."""

    alert_id: int
    rule: str
    unit_id: str
    fault_codes: tuple[str, ...] = ()


def episodes(
    conditions: list[Condition], open_alerts: list[OpenAlert]
) -> tuple[list[Condition], list[OpenAlert]]:
    """(conditions that start an episode, open alerts whose condition ended)."""
    holding = {(condition.rule, condition.unit_id) for condition in conditions}
    already = {(alert.rule, alert.unit_id) for alert in open_alerts}
    to_raise = [c for c in conditions if (c.rule, c.unit_id) not in already]
    to_clear = [a for a in open_alerts if (a.rule, a.unit_id) not in holding]
    return to_raise, to_clear


def changed_fault_codes(
    conditions: list[Condition], open_alerts: list[OpenAlert]
) -> list[tuple[OpenAlert, Condition]]:
    """Open alerts whose unit still holds the condition but now reports other fault codes."""
    holding = {(c.rule, c.unit_id): c for c in conditions}
    return [
        (alert, holding[(alert.rule, alert.unit_id)])
        for alert in open_alerts
        if (alert.rule, alert.unit_id) in holding
        and holding[(alert.rule, alert.unit_id)].fault_codes != alert.fault_codes
    ]


def routing_key(event: str, rule: str) -> str:
    """Routing key of an alert event on the `alerts` exchange: `alert.<event>.<rule>`."""
    return f"alert.{event}.{rule}"
