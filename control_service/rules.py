"""What each command type means: its unit kind, its params, and the unit states it needs."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from control_service.model import HOLD_TYPES, UnitRecord

MEGAPACK_MODES = ("IDLE", "CHARGING", "DISCHARGING", "STANDBY", "MAINTENANCE")
MAX_HOLD_S = 86_400  # a setpoint held over a day unrenewed is a hazard, not a plan
MAX_SCHEDULE_AHEAD_S = 7 * 86_400  # a schedule is for the coming week, not for years
NOT_BEFORE_SLACK_S = 5.0  # a `not_before` this little in the past is "now" (clock skew)


class Refused(Exception):
    """A command the service will not create: an HTTP status and a readable detail."""

    def __init__(self, status: int, detail: str | list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(_Params):
    """A command without params."""


class _HeldParams(_Params):
    hold_s: int | None = Field(
        default=None,
        ge=0,
        le=MAX_HOLD_S,
        description="seconds the unit keeps the setpoint unless renewed, then STANDBY at 0 kW "
        "(default COMMAND_HOLD_S; 0 = until changed)",
    )


class SetModeParams(_HeldParams):
    """`set_mode`: the operating mode to enter."""

    mode: Literal["IDLE", "CHARGING", "DISCHARGING", "STANDBY", "MAINTENANCE"]


class SetPowerParams(_HeldParams):
    """`set_power`: a setpoint, positive discharging to the grid, negative charging."""

    power_kw: float = Field(allow_inf_nan=False)


class SetSocLimitsParams(_Params):
    """`set_soc_limits`: the band the unit keeps its state of charge in (min below max)."""

    min_percent: float = Field(ge=0, le=100, allow_inf_nan=False)
    max_percent: float = Field(ge=0, le=100, allow_inf_nan=False)


class SetChargeLimitParams(_Params):
    """`set_charge_limit`: the state of charge a vehicle stops charging at."""

    limit_percent: float = Field(ge=50, le=100, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class CommandType:
    """One command type: the kind of unit it is for, its params, and the states it needs."""

    name: str
    kind: Literal["megapack", "ev"]
    params: type[_Params]
    forbidden_states: frozenset[str] = frozenset()
    required_states: frozenset[str] | None = None


_NOT_OPERATING = frozenset({"FAULT", "OFFLINE"})

COMMAND_TYPES: dict[str, CommandType] = {
    command.name: command
    for command in (
        CommandType("set_mode", "megapack", SetModeParams, _NOT_OPERATING),
        CommandType("set_power", "megapack", SetPowerParams, _NOT_OPERATING | {"MAINTENANCE"}),
        CommandType("set_soc_limits", "megapack", SetSocLimitsParams),
        CommandType("reset_fault", "megapack", NoParams, required_states=frozenset({"FAULT"})),
        CommandType("start_charging", "ev", NoParams, frozenset({"FAULT"})),
        CommandType("stop_charging", "ev", NoParams),
        CommandType("set_charge_limit", "ev", SetChargeLimitParams),
    )
}


def command_type(name: str) -> CommandType:
    """The command type called `name` (422 when there is none)."""
    found = COMMAND_TYPES.get(name)
    if found is None:
        raise Refused(422, f"unknown command type {name!r}; one of: {', '.join(COMMAND_TYPES)}")
    return found


def check_params(
    command: CommandType, params: dict[str, Any], *, default_hold_s: int = 0
) -> dict[str, Any]:
    """The params validated for the type, hold filled in (422 listing every bad field)."""
    try:
        checked = command.params.model_validate(params).model_dump()
        if command.name in HOLD_TYPES and checked["hold_s"] is None:
            checked["hold_s"] = default_hold_s
    except ValidationError as error:
        problems = error.errors(include_url=False, include_context=False, include_input=False)
        raise Refused(
            422,
            [
                {"loc": ["body", "params", *problem["loc"]], "msg": problem["msg"]}
                for problem in problems
            ],
        ) from None
    # Not in the params model (JSON Schema cannot say min < max), but of the params alone: a
    # group with it is refused whole, as a single command is.
    if command.name == "set_soc_limits" and checked["min_percent"] >= checked["max_percent"]:
        raise Refused(422, "min_percent must be below max_percent")
    return checked


def check_unit(
    command: CommandType,
    params: dict[str, Any],
    unit: UnitRecord,
    *,
    default_rated_power_kw: float,
) -> None:
    """Refuse a command the unit cannot take: 409 wrong kind or state, 422 power or params."""
    if unit.kind != command.kind:  # the request is well-formed; the unit it names is not one
        raise Refused(
            409, f"{command.name} is a {command.kind} command; {unit.unit_id} is a {unit.kind}"
        )
    if command.name == "set_power":
        rated_kw = unit.rated_power_kw or default_rated_power_kw
        if not math.isfinite(params["power_kw"]) or abs(params["power_kw"]) > rated_kw:
            raise Refused(
                422,
                f"power_kw {params['power_kw']:g} is beyond the rated power of "
                f"{unit.unit_id} (±{rated_kw:g} kW)",
            )
    if unit.last_state in command.forbidden_states:
        raise Refused(409, f"{unit.unit_id} is in {unit.last_state}; {command.name} is not allowed")
    if command.required_states is not None and unit.last_state not in command.required_states:
        allowed = " or ".join(sorted(command.required_states))
        raise Refused(
            409, f"{unit.unit_id} is in {unit.last_state}; {command.name} needs {allowed}"
        )


def check_not_before(not_before: datetime | None, *, now: datetime) -> datetime | None:
    """A schedule time within bounds (422 naming `not_before`), or None to run at once."""
    if not_before is None:
        return None
    problem = None
    if not_before < now - timedelta(seconds=NOT_BEFORE_SLACK_S):
        problem = f"is in the past (now {now.isoformat(timespec='seconds')})"
    elif not_before > now + timedelta(seconds=MAX_SCHEDULE_AHEAD_S):
        problem = f"is more than {MAX_SCHEDULE_AHEAD_S // 86_400} days ahead"
    if problem is not None:
        raise Refused(422, [{"loc": ["body", "not_before"], "msg": f"not_before {problem}"}])
    return not_before if not_before > now else None


def request_digest(
    *,
    unit_id: str,
    type_name: str,
    params: dict[str, Any],
    ttl_s: int,
    not_before: datetime | None = None,
) -> str:
    """A fingerprint of what was asked, to tell a retry (same) from a reused key (different)."""
    asked = {"unit_id": unit_id, "type": type_name, "params": params, "ttl_s": ttl_s}
    if not_before is not None:
        asked["not_before"] = not_before.isoformat()
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
