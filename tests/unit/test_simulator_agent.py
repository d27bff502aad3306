"""The unit agent's decisions: refusals with reasons, at most once, never expired, completion."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest

from proto.megapack.v1 import commands_pb2
from simulator.agent import (
    ACKNOWLEDGED,
    COMPLETED,
    FAILED,
    LAPSED,
    REJECTED,
    SUPERSEDED,
    UnitAgent,
)
from simulator.fleet import Fleet
from simulator.megapack import MEGAPACK_4H
from simulator.physics import UnitTraits

NOW_MS = 1_767_225_600_000 + 19 * 3_600_000  # the evening peak: dispatch discharges


def setup() -> tuple[Fleet, UnitAgent]:
    fleet = Fleet(
        megapack_count=3,
        ev_count=2,
        site_count=1,
        fleet_count=1,
        seed=1,
        fault_rate_per_h=0.0,
        faulted_units=("MP-0002",),
    )
    fleet.sites[0].utc_offset_h = 0.0
    fleet.step(NOW_MS)
    return fleet, UnitAgent(fleet=fleet, agent_id="sim-test", completion_timeout_s=10)


def command(
    unit_id: str,
    type_: str,
    params: dict[str, Any] | None = None,
    *,
    expires_at_ms: int = NOW_MS + 30_000,
) -> commands_pb2.Command:
    return commands_pb2.Command(
        command_id=str(uuid.uuid4()),
        unit_id=unit_id,
        kind="ev" if unit_id.startswith("EV") else "megapack",
        type=type_,
        params_json=json.dumps(params or {}),
        issued_at_ms=NOW_MS - 1_000,
        expires_at_ms=expires_at_ms,
        requested_by="ops",
    )


def statuses(acks: list[commands_pb2.CommandAck]) -> list[int]:
    return [ack.status for ack in acks]


def test_an_expired_command_is_rejected_and_never_executed() -> None:
    fleet, agent = setup()
    unit = fleet.megapacks["MP-0001"]
    acks = agent.receive(
        command("MP-0001", "set_power", {"power_kw": -400}, expires_at_ms=NOW_MS - 1), now_ms=NOW_MS
    )
    assert statuses(acks) == [REJECTED]
    assert acks[0].reason == "expired"
    assert unit.mode_override is None
    fleet.step(NOW_MS + 1_000)
    assert unit.power_kw >= 0  # still following dispatch, which discharges now


def test_set_power_is_acknowledged_then_completed_when_the_setpoint_is_reached() -> None:
    fleet, agent = setup()
    unit = fleet.megapacks["MP-0001"]
    sent = command("MP-0001", "set_power", {"power_kw": -500})
    assert statuses(agent.receive(sent, now_ms=NOW_MS)) == [ACKNOWLEDGED]
    # The unit ramps: from what dispatch had it deliver to -500 kW at its own ramp rate.
    ramp_s = math.ceil((unit.power_kw + 500) / unit.traits.ramp_kw_per_s)
    done = []
    for second in range(1, ramp_s + 2):
        fleet.step(NOW_MS + second * 1_000)
        done = agent.progress(now_ms=NOW_MS + second * 1_000)
        if done:
            break
    assert ramp_s > 1  # a real wait, not an instant echo
    assert statuses(done) == [COMPLETED]
    assert second >= ramp_s - 1  # within the 1 % tolerance at most one step early
    assert done[0].command_id == sent.command_id
    tolerance = 0.01 * unit.rated_power_kw
    assert unit.power_kw == pytest.approx(-500, abs=tolerance)
    assert unit.state == "CHARGING"
    reading = fleet.step(NOW_MS + (second + 1) * 1_000).sites["SITE-01"][0]
    assert reading["state"] == "CHARGING"
    assert reading["power_kw"] == pytest.approx(-500, abs=tolerance)


def test_a_command_delivered_twice_runs_once_and_gets_the_same_answers() -> None:
    fleet, agent = setup()
    unit = fleet.megapacks["MP-0001"]
    first = command("MP-0001", "set_power", {"power_kw": -300})
    answers = agent.receive(first, now_ms=NOW_MS)
    later = command("MP-0001", "set_power", {"power_kw": 200})
    agent.receive(later, now_ms=NOW_MS + 10)
    replay = agent.receive(first, now_ms=NOW_MS + 20)  # redelivered after the newer command
    assert statuses(replay) == statuses(answers) == [ACKNOWLEDGED]
    assert replay[0].at_ms == answers[0].at_ms
    assert unit.setpoint_kw == 200  # the first command did not run a second time


@pytest.mark.parametrize(
    ("unit_id", "type_", "params", "reason"),
    [
        ("MP-0001", "set_power", {"power_kw": 99_999}, "beyond this unit's rated power"),
        ("MP-0001", "reset_fault", {}, "not in FAULT"),
        ("MP-0002", "set_mode", {"mode": "DISCHARGING"}, "in FAULT"),
        ("MP-0002", "set_power", {"power_kw": 100}, "in FAULT"),
        ("MP-0099", "set_mode", {"mode": "IDLE"}, "unknown unit"),
        ("MP-0001", "set_mode", {"mode": "WARP"}, "bad params"),
        ("MP-0001", "set_power", {"power_kw": "lots"}, "bad params"),
        ("MP-0001", "set_soc_limits", {"min_percent": 80, "max_percent": 20}, "bad params"),
        ("MP-0001", "start_charging", {}, "unknown command type"),
        ("EV-0001", "set_charge_limit", {"limit_percent": 20}, "bad params"),
        ("EV-0001", "stop_charging", {}, "not charging"),
    ],
)
def test_the_unit_refuses_what_it_cannot_do_with_a_reason(
    unit_id: str, type_: str, params: dict[str, Any], reason: str
) -> None:
    fleet, agent = setup()
    fleet.evs["EV-0001"].charging_state = "NOT_CHARGING"
    acks = agent.receive(command(unit_id, type_, params), now_ms=NOW_MS)
    assert statuses(acks) == [REJECTED]
    assert reason in acks[0].reason


def test_rated_power_is_the_units_own() -> None:
    fleet, agent = setup()
    small = fleet.megapacks["MP-0001"]
    small.model, small.traits = MEGAPACK_4H, UnitTraits.nominal(MEGAPACK_4H)
    acks = agent.receive(command(small.unit_id, "set_power", {"power_kw": 1_500}), now_ms=NOW_MS)
    assert statuses(acks) == [REJECTED]
    assert "979" in acks[0].reason


def test_reset_fault_clears_the_fault_and_completes() -> None:
    fleet, agent = setup()
    assert statuses(agent.receive(command("MP-0002", "reset_fault"), now_ms=NOW_MS)) == [
        ACKNOWLEDGED
    ]
    reading = fleet.step(NOW_MS + 1_000).sites["SITE-01"][1]
    assert reading["state"] != "FAULT"
    assert reading["fault_codes"] == []
    assert statuses(agent.progress(now_ms=NOW_MS + 1_000)) == [COMPLETED]


def test_set_mode_discharging_shows_in_telemetry_and_completes() -> None:
    fleet, agent = setup()
    agent.receive(command("MP-0001", "set_mode", {"mode": "CHARGING"}), now_ms=NOW_MS)
    fleet.step(NOW_MS + 1_000)
    agent.progress(now_ms=NOW_MS + 1_000)
    agent.receive(command("MP-0001", "set_mode", {"mode": "DISCHARGING"}), now_ms=NOW_MS + 1_000)
    reading = fleet.step(NOW_MS + 2_000).sites["SITE-01"][0]
    assert reading["state"] == "DISCHARGING"
    assert reading["power_kw"] > 0
    assert statuses(agent.progress(now_ms=NOW_MS + 2_000)) == [COMPLETED]


def test_soc_limits_apply_at_once_and_ev_commands_take_effect() -> None:
    fleet, agent = setup()
    limits = agent.receive(
        command("MP-0001", "set_soc_limits", {"min_percent": 10, "max_percent": 60}), now_ms=NOW_MS
    )
    assert statuses(limits) == [ACKNOWLEDGED, COMPLETED]
    assert fleet.megapacks["MP-0001"].max_soc_percent == 60
    vehicle = fleet.evs["EV-0002"]
    vehicle.soc_percent, vehicle.charging_state = 40.0, "NOT_CHARGING"
    assert statuses(agent.receive(command("EV-0002", "start_charging"), now_ms=NOW_MS)) == [
        ACKNOWLEDGED
    ]
    reading = fleet.step(NOW_MS + 1_000).fleets["FLEET-01"][1]
    assert reading["charging_state"] == "CHARGING"
    assert reading["charge_power_kw"] > 0
    assert statuses(agent.progress(now_ms=NOW_MS + 1_000)) == [COMPLETED]
    agent.receive(command("EV-0002", "stop_charging"), now_ms=NOW_MS + 1_000)
    fleet.step(NOW_MS + 2_000)
    assert statuses(agent.progress(now_ms=NOW_MS + 2_000)) == [COMPLETED]
    assert vehicle.charging_state == "NOT_CHARGING"


def test_a_setpoint_the_unit_cannot_hold_fails_after_the_timeout() -> None:
    fleet, agent = setup()
    unit = fleet.megapacks["MP-0001"]
    unit.state, unit.soc_percent = "IDLE", unit.min_soc_percent + 0.001  # almost empty
    agent.receive(command("MP-0001", "set_power", {"power_kw": 800}), now_ms=NOW_MS)
    answers: list[commands_pb2.CommandAck] = []
    for second in range(1, 13):
        fleet.step(NOW_MS + second * 1_000)
        answers += agent.progress(now_ms=NOW_MS + second * 1_000)
    assert statuses(answers) == [FAILED]
    assert "not reached within 10 s" in answers[0].reason


def test_a_hold_that_runs_out_unrenewed_falls_back_to_standby_and_says_so() -> None:
    fleet, agent = setup()
    unit = fleet.megapacks["MP-0001"]
    held = command("MP-0001", "set_power", {"power_kw": 300, "hold_s": 5})
    assert statuses(agent.receive(held, now_ms=NOW_MS)) == [ACKNOWLEDGED]
    assert (unit.mode_override, unit.setpoint_kw) == ("DISCHARGING", 300)
    assert LAPSED not in statuses(agent.progress(now_ms=NOW_MS + 4_999))
    lapsed = [a for a in agent.progress(now_ms=NOW_MS + 5_000) if a.status == LAPSED]
    assert [a.command_id for a in lapsed] == [held.command_id]
    assert (unit.mode_override, unit.setpoint_kw) == ("STANDBY", 0.0)
    assert LAPSED not in statuses(agent.progress(now_ms=NOW_MS + 60_000))  # once only


def test_the_same_command_again_extends_the_hold_and_hold_0_keeps_it_until_changed() -> None:
    fleet, agent = setup()
    unit = fleet.megapacks["MP-0001"]
    agent.receive(command("MP-0001", "set_power", {"power_kw": 300, "hold_s": 5}), now_ms=NOW_MS)
    renewed = command("MP-0001", "set_power", {"power_kw": 300, "hold_s": 5})
    agent.receive(renewed, now_ms=NOW_MS + 4_000)
    assert LAPSED not in statuses(agent.progress(now_ms=NOW_MS + 8_000))
    assert [a.command_id for a in agent.progress(now_ms=NOW_MS + 9_000) if a.status == LAPSED] == [
        renewed.command_id
    ]
    agent.receive(command("MP-0003", "set_mode", {"mode": "CHARGING", "hold_s": 0}), now_ms=NOW_MS)
    assert LAPSED not in statuses(agent.progress(now_ms=NOW_MS + 10**9))
    assert fleet.megapacks["MP-0003"].mode_override == "CHARGING"
    assert unit.mode_override == "STANDBY"


def test_a_command_older_than_one_carried_out_is_superseded_and_never_executed() -> None:
    fleet, agent = setup()
    unit = fleet.megapacks["MP-0001"]
    newer = command("MP-0001", "set_power", {"power_kw": 200})
    newer.seq = 11
    older = command("MP-0001", "set_power", {"power_kw": -400})
    older.seq = 10
    assert statuses(agent.receive(newer, now_ms=NOW_MS)) == [ACKNOWLEDGED]
    refused = agent.receive(older, now_ms=NOW_MS + 1)
    assert statuses(refused) == [SUPERSEDED]
    assert "seq 11" in refused[0].reason
    assert unit.setpoint_kw == 200
    other_type = command("MP-0001", "set_mode", {"mode": "IDLE"})
    other_type.seq = 9  # another type: not superseded by a set_power
    assert statuses(agent.receive(other_type, now_ms=NOW_MS + 2)) == [ACKNOWLEDGED]
