"""The shapes of group commands: a selector of units, one command each, and their progress."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from common.readings import ID_PATTERN
from control_service.model import GroupRecord
from control_service.schemas import MAX_TTL_S, CommandTypeName, Status

MAX_GROUP_UNITS = 10_000
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class Selector(BaseModel):
    """Which units: exactly one of `site_id`, `fleet_id` or `unit_ids`."""

    model_config = ConfigDict(extra="forbid")

    site_id: Id | None = Field(default=None, description="every Megapack of this site")
    fleet_id: Id | None = Field(default=None, description="every vehicle of this fleet")
    unit_ids: list[Id] | None = Field(
        default=None, min_length=1, max_length=MAX_GROUP_UNITS, description="these units"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Selector:
        given = [name for name in ("site_id", "fleet_id", "unit_ids") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of site_id, fleet_id or unit_ids")
        if self.unit_ids is not None and len(set(self.unit_ids)) != len(self.unit_ids):
            raise ValueError("unit_ids has duplicates")
        return self

    def as_dict(self) -> dict[str, Any]:
        """The one key given, with its value."""
        return self.model_dump(exclude_none=True)


class GroupCreate(BaseModel):
    """One command of a type for every unit the selector names."""

    model_config = ConfigDict(extra="forbid")

    selector: Selector
    type: CommandTypeName
    params: dict[str, Any] = Field(default_factory=dict, description="as for a single command")
    ttl_s: int | None = Field(default=None, ge=1, le=MAX_TTL_S)
    not_before: AwareDatetime | None = None


class GroupAccepted(BaseModel):
    """A group accepted: its id and how many commands it made (rejected ones included)."""

    group_id: uuid.UUID
    commands: int


class GroupCommand(BaseModel):
    """One unit's command in a group."""

    unit_id: str
    command_id: uuid.UUID
    status: Status
    reason: str | None
    achieved: dict[str, Any] | None


class GroupPublic(BaseModel):
    """A group: what was asked, the counts by status, and each unit's command."""

    group_id: uuid.UUID
    selector: dict[str, Any]
    type: CommandTypeName
    params: dict[str, Any]
    ttl_s: int
    not_before: datetime | None
    requested_by: str
    created_at: datetime
    counts: dict[str, int] = Field(description="commands by status (only those present)")
    commands: list[GroupCommand]

    @classmethod
    def of(cls, stored: GroupRecord) -> GroupPublic:
        """The public view of a stored group."""
        counts: dict[str, int] = {}
        for member in stored.members:
            counts[member.status] = counts.get(member.status, 0) + 1
        group = stored.group
        return cls(
            group_id=group.group_id,
            selector=group.selector,
            type=group.type,
            params=group.params,
            ttl_s=group.ttl_s,
            not_before=group.not_before,
            requested_by=group.requested_by,
            created_at=stored.created_at,
            counts=counts,
            commands=[
                GroupCommand(
                    unit_id=m.unit_id,
                    command_id=m.command_id,
                    status=m.status,
                    reason=m.reason,
                    achieved=m.achieved,
                )
                for m in stored.members
            ],
        )
