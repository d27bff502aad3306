"""Command rules: params, unit kind, rated power and the states each command needs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control_service.model import PREDECESSORS, STATUSES, CommandRecord, UnitRecord
from control_service.rules import (
    COMMAND_TYPES,
    Refused,
    check_params,
    check_unit,
    command_type,
    request_digest,
)
from control_service.schemas import CommandPublic
from db.commands import TRANSITIONS


def unit(state: str = "IDLE", kind: str = "megapack", rated: float | None = None) -> UnitRecord:
    return UnitRecord("MP-0001", kind, state, datetime.now(UTC), rated)


def record(status: str = "pending", steps: tuple[str, ...] = ()) -> CommandRecord:
    """A stored command whose steps happened one second apart, in the order given."""
    created = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    times = {f"{step}_at": created + timedelta(seconds=i + 1) for i, step in enumerate(steps)}
    base: dict[str, Any] = dict.fromkeys(
        ("sent_at", "acknowledged_at", "completed_at", "rejected_at", "failed_at", "expired_at")
    )
    return CommandRecord(
        command_id=uuid.uuid4(),
        unit_id="MP-0001",
        kind="megapack",
        type="set_mode",
        params={"mode": "IDLE"},
        ttl_s=30,
        requested_by="ops",
        idempotency_key=None,
        request_digest="d",
        seq=1,
        status=status,
        created_at=created,
        expires_at=created + timedelta(seconds=30),
        reason=None,
        agent_id=None,
        publish_attempts=1,
        delivery_error=None,
        **{**base, **times},
    )


def refusal(type_name: str, params: dict[str, Any], target: UnitRecord) -> Refused:
    command = command_type(type_name)
    with pytest.raises(Refused) as caught:
        check_unit(command, check_params(command, params), target, default_rated_power_kw=1927)
    return caught.value


def accepts(type_name: str, params: dict[str, Any], target: UnitRecord) -> dict[str, Any]:
    command = command_type(type_name)
    checked = check_params(command, params)
    check_unit(command, checked, target, default_rated_power_kw=1927)
    return checked


def test_unknown_type_is_422_naming_the_known_ones() -> None:
    with pytest.raises(Refused) as caught:
        command_type("self_destruct")
    assert caught.value.status == 422
    assert "set_mode" in str(caught.value.detail)


@pytest.mark.parametrize(
    ("type_name", "params"),
    [
        ("set_mode", {"mode": "FAULT"}),
        ("set_mode", {}),
        ("set_power", {"power_kw": "lots"}),
        ("set_power", {"power_kw": float("nan")}),
        ("set_soc_limits", {"min_percent": -1, "max_percent": 20}),
        ("set_charge_limit", {"limit_percent": 49}),
        ("set_charge_limit", {"limit_percent": 101}),
        ("reset_fault", {"force": True}),
    ],
)
def test_bad_params_are_422_with_their_location(type_name: str, params: dict[str, Any]) -> None:
    with pytest.raises(Refused) as caught:
        check_params(command_type(type_name), params)
    assert caught.value.status == 422
    assert isinstance(caught.value.detail, list)
    assert all(problem["loc"][:2] == ["body", "params"] for problem in caught.value.detail)


def test_soc_limits_must_be_ordered() -> None:
    # a rule of the params alone: refused before any unit is looked at (a group whole)
    with pytest.raises(Refused) as caught:
        check_params(command_type("set_soc_limits"), {"min_percent": 80, "max_percent": 20})
    refused = caught.value
    assert (refused.status, refused.detail) == (422, "min_percent must be below max_percent")
    assert accepts("set_soc_limits", {"min_percent": 20, "max_percent": 80}, unit())


def test_set_power_within_the_default_rated_power_is_accepted_both_ways() -> None:
    assert accepts("set_power", {"power_kw": -1927}, unit())["power_kw"] == -1927
    assert accepts("set_power", {"power_kw": 1927}, unit())["power_kw"] == 1927


def test_set_power_beyond_rated_power_is_422() -> None:
    assert refusal("set_power", {"power_kw": 1928}, unit()).status == 422
    assert refusal("set_power", {"power_kw": -1928}, unit()).status == 422


def test_a_units_own_rated_power_wins_over_the_default() -> None:
    assert refusal("set_power", {"power_kw": 600}, unit(rated=500)).status == 422
    assert accepts("set_power", {"power_kw": 3000}, unit(rated=3900))["power_kw"] == 3000


@pytest.mark.parametrize("type_name", ["set_mode", "set_power"])
def test_operating_commands_on_a_faulted_unit_are_409(type_name: str) -> None:
    params = {"mode": "DISCHARGING"} if type_name == "set_mode" else {"power_kw": 10}
    refused = refusal(type_name, params, unit("FAULT"))
    assert refused.status == 409
    assert "FAULT" in str(refused.detail)


def test_reset_fault_needs_a_fault() -> None:
    assert refusal("reset_fault", {}, unit("IDLE")).status == 409
    accepts("reset_fault", {}, unit("FAULT"))


def test_commands_for_the_other_kind_of_unit_are_409() -> None:
    assert refusal("start_charging", {}, unit()).status == 409
    assert refusal("set_mode", {"mode": "IDLE"}, unit("NOT_CHARGING", kind="ev")).status == 409
    accepts("start_charging", {}, unit("NOT_CHARGING", kind="ev"))


def test_every_type_has_a_kind_and_params_model() -> None:
    assert {command.kind for command in COMMAND_TYPES.values()} == {"megapack", "ev"}
    assert len(COMMAND_TYPES) == 7


def test_request_digest_tells_a_retry_from_another_request() -> None:
    first = request_digest(unit_id="MP-0001", type_name="set_mode", params={"a": 1}, ttl_s=30)
    again = request_digest(unit_id="MP-0001", type_name="set_mode", params={"a": 1}, ttl_s=30)
    other = request_digest(unit_id="MP-0002", type_name="set_mode", params={"a": 1}, ttl_s=30)
    assert first == again != other


def test_statuses_only_move_forward() -> None:
    order = {status: index for index, status in enumerate(STATUSES[:4])}
    for status, allowed in PREDECESSORS.items():
        assert status not in allowed
        for before in allowed:
            assert before not in ("completed", "rejected", "failed", "expired")
            if status in order:
                assert order[before] < order[status]
    assert "status IN ('pending')" in TRANSITIONS["sent"]
    assert "'acknowledged'" not in TRANSITIONS["expired"].split("WHERE")[1]


def test_history_lists_every_step_in_time_order() -> None:
    command = record(status="completed", steps=("sent", "acknowledged", "completed"))
    public = CommandPublic.of(command)
    assert [step.status for step in public.history] == [
        "pending",
        "sent",
        "acknowledged",
        "completed",
    ]
