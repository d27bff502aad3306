"""The shapes of the control API: what operators send and what they get back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from control_service.model import STATUSES, CommandRecord
from control_service.rules import (
    COMMAND_TYPES,
    NoParams,
    SetChargeLimitParams,
    SetModeParams,
    SetPowerParams,
    SetSocLimitsParams,
)

CommandTypeName = Literal[
    "set_mode",
    "set_power",
    "set_soc_limits",
    "reset_fault",
    "start_charging",
    "stop_charging",
    "set_charge_limit",
]
Status = Literal[
    "scheduled",
    "pending",
    "sent",
    "acknowledged",
    "completed",
    "rejected",
    "failed",
    "expired",
    "superseded",
]
assert set(COMMAND_TYPES) == set(CommandTypeName.__args__)  # type: ignore[attr-defined]
assert set(STATUSES) == set(Status.__args__)  # type: ignore[attr-defined]

MAX_TTL_S = 3600  # a command older than an hour is a surprise, not an instruction


class _CommandBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_s: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TTL_S,
        description="seconds the unit has to receive it, counted from `not_before` when "
        "given (default COMMAND_DEFAULT_TTL_S)",
    )
    not_before: AwareDatetime | None = Field(
        default=None,
        description="RFC 3339 with offset: `scheduled` until then, published at that time "
        "(at most 7 days ahead; not in the past)",
    )


class SetModeCommand(_CommandBase):
    """Megapack: enter an operating mode."""

    type: Literal["set_mode"]
    params: SetModeParams


class SetPowerCommand(_CommandBase):
    """Megapack: hold a power setpoint within the unit's rated power."""

    type: Literal["set_power"]
    params: SetPowerParams


class SetSocLimitsCommand(_CommandBase):
    """Megapack: keep the state of charge between two limits (min < max)."""

    type: Literal["set_soc_limits"]
    params: SetSocLimitsParams


class ResetFaultCommand(_CommandBase):
    """Megapack in FAULT: clear the fault."""

    type: Literal["reset_fault"]
    params: NoParams = Field(default_factory=NoParams)


class StartChargingCommand(_CommandBase):
    """EV: start charging."""

    type: Literal["start_charging"]
    params: NoParams = Field(default_factory=NoParams)


class StopChargingCommand(_CommandBase):
    """EV: stop charging."""

    type: Literal["stop_charging"]
    params: NoParams = Field(default_factory=NoParams)


class SetChargeLimitCommand(_CommandBase):
    """EV: stop charging at this state of charge."""

    type: Literal["set_charge_limit"]
    params: SetChargeLimitParams


CommandCreate = Annotated[
    SetModeCommand
    | SetPowerCommand
    | SetSocLimitsCommand
    | ResetFaultCommand
    | StartChargingCommand
    | StopChargingCommand
    | SetChargeLimitCommand,
    Field(discriminator="type"),
]


class CommandStep(BaseModel):
    """One status the command went through, and when the service learned of it."""

    status: Status
    at: datetime


class CommandPublic(BaseModel):
    """A command and everything that happened to it."""

    command_id: uuid.UUID
    unit_id: str
    kind: Literal["megapack", "ev"]
    type: CommandTypeName
    params: dict[str, Any]
    ttl_s: int
    status: Status
    requested_by: str = Field(description="name of the operator key that asked")
    idempotency_key: str | None
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None
    completed_at: datetime | None
    rejected_at: datetime | None
    failed_at: datetime | None
    expired_at: datetime | None
    superseded_at: datetime | None
    not_before: datetime | None = Field(description="scheduled: not published before this")
    superseded_by: uuid.UUID | None = Field(description="the newer command that replaced it")
    lapsed_at: datetime | None = Field(
        description="the unit's hold ran out unrenewed: it went back to STANDBY at 0 kW"
    )
    achieved: dict[str, Any] | None = Field(
        description="what the unit's telemetry showed when the effect was verified "
        "(`power_kw`, `state`, `at`), or the last it showed when it was not"
    )
    group_id: uuid.UUID | None = Field(description="the group request it belongs to")
    reason: str | None = Field(description="why the unit refused or failed, or why it expired")
    agent_id: str | None = Field(description="the unit agent that answered")
    delivery_error: str | None = Field(description="why the last publish was not confirmed")
    history: list[CommandStep] = Field(description="every step, oldest first")

    @classmethod
    def of(cls, command: CommandRecord) -> CommandPublic:
        """The public view of a stored command."""
        first = "scheduled" if command.not_before is not None else "pending"
        steps = [CommandStep(status=first, at=command.created_at)]
        steps += [
            CommandStep(status=status, at=at)
            for status in STATUSES[2:]
            if (at := getattr(command, f"{status}_at")) is not None
        ]
        if command.pending_at is not None:
            steps.append(CommandStep(status="pending", at=command.pending_at))
        values = {name: getattr(command, name) for name in cls.model_fields if name != "history"}
        return cls(**values, history=sorted(steps, key=lambda step: step.at))


class CommandPage(BaseModel):
    """One page of a unit's commands, newest first."""

    items: list[CommandPublic]
    next_cursor: int | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )
