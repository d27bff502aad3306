"""The episode state machine: one alert per episode, severity inside it, delays, deadbands."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring_service.episodes import (
    Episode,
    Measurement,
    Timer,
    message,
    step,
    target_severity,
)
from monitoring_service.rules import RULE_NAMES, Rule, Thresholds, build_rules, parse_tuning

T0 = datetime(2026, 1, 1, tzinfo=UTC)
THRESHOLDS = Thresholds(
    megapack_temp_high_c=45, megapack_temp_critical_c=55, megapack_low_soc_percent=15,
    megapack_critical_soc_percent=5, stale_after_s=30, ev_battery_temp_warning_c=50,
    ev_battery_temp_c=58, ev_battery_percent=15, ev_critical_battery_percent=10,
    ev_tire_pressure_psi=30.5,
)  # fmt: skip
RULES = {rule.name: rule for rule in build_rules(THRESHOLDS)}


def play(rule: Rule, values: list[float | None], *, every_s: float = 1.0) -> list[str]:
    """Feed one unit's value per evaluation (None: condition not near); the events it makes."""
    episode: Episode | None = None
    timer = Timer()
    events: list[str] = []
    next_id = 1
    for tick, value in enumerate(values):
        now = T0 + timedelta(seconds=tick * every_s)
        measurement = (
            None if value is None else Measurement(rule.name, "MP-1", "megapack", "S", None, value)
        )
        outcome = step(rule, measurement=measurement, episode=episode, timer=timer, now=now)
        timer = outcome.timer
        if outcome.raise_severity is not None:
            assert episode is None
            episode = Episode(next_id, rule.name, "MP-1", outcome.raise_severity)
            next_id += 1
            events.append(f"raised:{outcome.raise_severity}")
        elif episode is not None and outcome.new_severity is not None:
            episode = replace(episode, severity=outcome.new_severity)
            events.append(f"severity:{outcome.new_severity}")
        if outcome.clear:
            assert episode is not None
            episode = None
            events.append("cleared")
    return events


def test_a_hot_episode_is_one_alert_whose_severity_rises_and_clears() -> None:
    # 25 °C, heating through 45 and 55 to 70 for a few seconds, then back to 25 °C (a value
    # under the rule's near bound is not measured: None)
    values: list[float | None] = [None, None, 48, 62, 70, 70, 70, None, None, None]
    events = play(RULES["megapack_temp"], values, every_s=5)
    assert events == ["raised:warning", "severity:critical", "cleared"]


def test_a_jump_straight_to_critical_raises_critical_once() -> None:
    events = play(RULES["megapack_temp"], [None, 70, 70, None, None, None], every_s=5)
    assert events == ["raised:critical", "cleared"]


def test_severity_falls_back_inside_the_same_alert() -> None:
    events = play(RULES["megapack_temp"], [48, 60, 60, 50, 50, None, None, None], every_s=5)
    assert events == ["raised:warning", "severity:critical", "severity:warning", "cleared"]


def test_a_value_chattering_at_the_threshold_makes_one_alert() -> None:
    temp = RULES["megapack_temp"]  # warning at 45, deadband 2, off-delay 10 s
    chatter: list[float | None] = [44.6, 45.1, 44.8, 45.3, 44.2, 45.0, 43.5, 45.2] * 5
    events = play(temp, chatter, every_s=1)
    assert events == ["raised:warning"]
    # at the critical boundary too: no flapping between warning and critical
    events = play(temp, [55.2, 54.1, 55.0, 53.5, 55.4, 54.9] * 5, every_s=1)
    assert events == ["raised:critical"]


def test_leaving_the_deadband_starts_the_off_delay_and_a_return_cancels_it() -> None:
    temp = RULES["megapack_temp"]
    assert temp.off_delay_s == 10
    # warning, gone for 5 s (< 10 s), back: still the same alert; then gone for good
    events = play(temp, [46, 40, None, 46, None, None, None], every_s=5)
    assert events == ["raised:warning", "cleared"]


def test_the_on_delay_holds_back_a_short_excursion() -> None:
    rule = replace(RULES["megapack_temp"], on_delay_s=10)
    assert play(rule, [46, 46, None, 46, None], every_s=4) == []
    assert play(rule, [46, 46, 47, 47], every_s=4) == ["raised:warning"]


def test_a_pending_condition_keeps_its_start_across_ticks() -> None:
    rule = replace(RULES["megapack_temp"], on_delay_s=10)
    first = step(rule, measurement=Measurement("megapack_temp", "U", "megapack", None, None, 50),
                 episode=None, timer=Timer(), now=T0)  # fmt: skip
    assert first.raise_severity is None
    assert first.timer.holding_since == T0
    # the timer is all a restarted process needs: it raises on time, not 10 s later
    later = step(rule, measurement=Measurement("megapack_temp", "U", "megapack", None, None, 50),
                 episode=None, timer=first.timer, now=T0 + timedelta(seconds=10))  # fmt: skip
    assert later.raise_severity == "warning"
    assert later.timer.idle


def test_low_soc_is_a_falling_rule_with_two_levels() -> None:
    soc = RULES["megapack_low_soc"]  # warning < 15, critical < 5, deadband 1
    assert target_severity(soc, 14.9, None) == "warning"
    assert target_severity(soc, 4.0, None) == "critical"
    assert target_severity(soc, 5.5, "critical") == "critical"  # inside the deadband
    assert target_severity(soc, 6.1, "critical") == "warning"
    assert target_severity(soc, 15.5, "warning") == "warning"
    assert target_severity(soc, 16.0, "warning") is None
    assert target_severity(soc, 15.0, None) is None


def test_flag_rules_hold_while_measured_and_fault_codes_update_without_an_event() -> None:
    fault = RULES["megapack_fault"]
    reading = Measurement("megapack_fault", "MP-9", "megapack", "S", None, None, ("A", "B"))
    episode = Episode(3, "megapack_fault", "MP-9", "critical", ("A",))
    outcome = step(fault, measurement=reading, episode=episode, timer=Timer(), now=T0)
    assert (outcome.new_severity, outcome.clear, outcome.new_fault_codes) == (
        None,
        False,
        ("A", "B"),
    )
    gone = step(fault, measurement=None, episode=episode, timer=Timer(), now=T0)
    assert gone.clear  # no off-delay: FAULT over is over


def test_messages_name_the_value_and_the_threshold_of_the_severity() -> None:
    temp = RULES["megapack_temp"]
    assert message(temp, unit_id="MP-1", severity="critical", value=70.04) == (
        "MP-1: temperature 70.0 °C ≥ 55 °C"
    )
    fault = message(RULES["megapack_fault"], unit_id="MP-9", severity="critical", value=None,
                    fault_codes=("CELL_OVERTEMP", "X"))  # fmt: skip
    assert fault == "MP-9: in FAULT (CELL_OVERTEMP, X)"
    assert message(RULES["ev_tire_pressure_low"], unit_id="EV-3", severity="warning",
                   value=28.04) == "EV-3: tire pressure 28.0 psi < 30.5"  # fmt: skip


def test_tuning_changes_one_rule_and_bad_tuning_is_named() -> None:
    tuning = parse_tuning("megapack_temp.on_delay_s=5, unit_stale.off_delay_s=3")
    tuned = replace(THRESHOLDS, tuning=tuning)
    rules = {rule.name: rule for rule in build_rules(tuned)}
    assert (rules["megapack_temp"].on_delay_s, rules["unit_stale"].off_delay_s) == (5, 3)
    assert rules["megapack_low_soc"].on_delay_s == RULES["megapack_low_soc"].on_delay_s
    with pytest.raises(ValueError, match="unknown rule 'nope'"):
        parse_tuning("nope.on_delay_s=1")
    with pytest.raises(ValueError, match="tune one of"):
        parse_tuning("megapack_temp.colour=1")
    with pytest.raises(ValueError, match="not a number"):
        parse_tuning("megapack_temp.deadband=hot")
    assert tuple(rule.name for rule in build_rules(THRESHOLDS)) == RULE_NAMES


@given(st.lists(st.floats(min_value=40, max_value=60), min_size=1, max_size=60))
def test_any_input_yields_alternating_raise_and_clear(values: list[float]) -> None:
    """Whatever the input, events are well formed: no second raise inside an episode."""
    events = play(RULES["megapack_temp"], list(values))
    active = False
    for event in events:
        if event.startswith("raised"):
            assert not active
            active = True
        elif event == "cleared":
            assert active
            active = False
        else:
            assert active
