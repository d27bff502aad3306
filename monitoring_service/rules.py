"""Alert rules: what each watches, its severity levels, delays and deadband."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")  # worst first
RANK: dict[str, int] = {"info": 1, "warning": 2, "critical": 3}
Direction = Literal["above", "below", "flag"]


@dataclass(frozen=True, slots=True)
class Level:
    """One severity of a rule and where it starts."""

    severity: Severity
    threshold: float | None  # None for a flag rule (the condition is a state, not a value)


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule with its levels (mildest first), delays and deadband."""

    name: str
    kind: Literal["megapack", "ev", "any"]
    direction: Direction
    levels: tuple[Level, ...]
    text: str  # how the message reads; `{value}` and `{threshold}` are filled in
    on_delay_s: float = 0.0  # the condition must hold this long before the alert is raised
    off_delay_s: float = 0.0  # and be gone this long before it clears
    deadband: float = 0.0  # a level is left only this far past its threshold

    @property
    def near_bound(self) -> float | None:
        """The values worth reading: past the mildest threshold, deadband included."""
        thresholds = [lvl.threshold for lvl in self.levels if lvl.threshold is not None]
        if not thresholds:
            return None
        if self.direction == "above":
            return min(thresholds) - self.deadband
        return max(thresholds) + self.deadband

    def threshold_of(self, severity: str) -> float | None:
        """The threshold of one of this rule's levels."""
        return next((lvl.threshold for lvl in self.levels if lvl.severity == severity), None)


RULE_NAMES: tuple[str, ...] = (
    "megapack_temp",
    "megapack_low_soc",
    "megapack_fault",
    "megapack_offline",
    "unit_stale",
    "ev_battery_temp",
    "ev_battery_low",
    "ev_tire_pressure_low",
)
TUNABLE = ("on_delay_s", "off_delay_s", "deadband")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where each rule's levels start (from settings); a rule absent from `enabled` never fires."""

    megapack_temp_high_c: float
    megapack_temp_critical_c: float
    megapack_low_soc_percent: float
    megapack_critical_soc_percent: float
    stale_after_s: float
    ev_battery_temp_warning_c: float
    ev_battery_temp_c: float
    ev_battery_percent: float
    ev_critical_battery_percent: float
    ev_tire_pressure_psi: float
    enabled: tuple[str, ...] = RULE_NAMES
    tuning: tuple[tuple[str, str, float], ...] = ()  # (rule, on_delay_s|off_delay_s|deadband, v)


def build_rules(t: Thresholds) -> tuple[Rule, ...]:
    """The enabled rules with the configured thresholds and tuning."""
    temp = "temperature {value:.1f} °C ≥ {threshold:g} °C"
    rules = (
        Rule("megapack_temp", "megapack", "above",
             (Level("warning", t.megapack_temp_high_c),
              Level("critical", t.megapack_temp_critical_c)),
             temp, on_delay_s=0, off_delay_s=10, deadband=2.0),
        Rule("megapack_low_soc", "megapack", "below",
             (Level("warning", t.megapack_low_soc_percent),
              Level("critical", t.megapack_critical_soc_percent)),
             "SOC {value:.1f} % under {threshold:g} %", on_delay_s=0, off_delay_s=10,
             deadband=1.0),
        Rule("megapack_fault", "megapack", "flag", (Level("critical", None),), "in FAULT"),
        Rule("megapack_offline", "megapack", "flag", (Level("warning", None),),
             "reports OFFLINE", on_delay_s=0, off_delay_s=0),
        Rule("unit_stale", "any", "above", (Level("warning", t.stale_after_s),),
             "silent for {value:.0f} s (≥ {threshold:g} s)"),
        Rule("ev_battery_temp", "ev", "above",
             (Level("warning", t.ev_battery_temp_warning_c),
              Level("critical", t.ev_battery_temp_c)),
             "battery {value:.1f} °C ≥ {threshold:g} °C", off_delay_s=10, deadband=2.0),
        Rule("ev_battery_low", "ev", "below",
             (Level("warning", t.ev_battery_percent),
              Level("critical", t.ev_critical_battery_percent)),
             "battery {value:.1f} % under {threshold:g} %", off_delay_s=10, deadband=1.0),
        Rule("ev_tire_pressure_low", "ev", "below", (Level("warning", t.ev_tire_pressure_psi),),
             "tire pressure {value:.1f} psi < {threshold:g}", off_delay_s=10, deadband=0.5),
    )  # fmt: skip
    assert tuple(rule.name for rule in rules) == RULE_NAMES
    tuned = {rule.name: rule for rule in rules}
    for name, field, value in t.tuning:
        rule = tuned[name]
        tuned[name] = replace(
            rule,
            on_delay_s=value if field == "on_delay_s" else rule.on_delay_s,
            off_delay_s=value if field == "off_delay_s" else rule.off_delay_s,
            deadband=value if field == "deadband" else rule.deadband,
        )
    return tuple(tuned[name] for name in RULE_NAMES if name in t.enabled)


def parse_tuning(text: str) -> tuple[tuple[str, str, float], ...]:
    """`megapack_temp.on_delay_s=5,unit_stale.off_delay_s=0` -> ((rule, field, value), ...)."""
    found: list[tuple[str, str, float]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        target, _, raw = part.partition("=")
        name, _, field = target.strip().partition(".")
        if name not in RULE_NAMES:
            raise ValueError(f"unknown rule {name!r}; rules: {', '.join(RULE_NAMES)}")
        if field not in TUNABLE:
            raise ValueError(f"{part!r}: tune one of {', '.join(TUNABLE)}")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{part!r}: {raw.strip()!r} is not a number") from None
        if not 0 <= value <= 86_400:
            raise ValueError(f"{part!r}: must be between 0 and 86400")
        found.append((name, field, value))
    return tuple(found)


def routing_key(event: str, rule: str) -> str:
    """Routing key of an alert event on the `alerts` exchange: `alert.<event>.<rule>`."""
    return f"alert.{event}.{rule}"
