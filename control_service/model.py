"""The command domain: statuses, the moves allowed between them, and the command records.

Both the handlers and the repository (db/commands.py) use these; nothing here does I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STATUSES = (
    "scheduled",
    "pending",
    "sent",
    "acknowledged",
    "completed",
    "rejected",
    "failed",
    "expired",
    "superseded",
)
FINAL_STATUSES = frozenset({"completed", "rejected", "failed", "expired", "superseded"})

# The only moves allowed: a status is written only over one of its predecessors, so a late or
# duplicate answer never moves a command back. An answer may overtake the `sent` step (the
# unit can answer before the broker's confirm reaches us) and COMPLETED may overtake ACK.
# `pending` over `scheduled` is the release of a due command; `superseded` over `sent` is the
# unit's own refusal of a command older than one it already carried out.
PREDECESSORS: dict[str, tuple[str, ...]] = {
    "pending": ("scheduled",),
    "sent": ("pending",),
    "acknowledged": ("pending", "sent"),
    "completed": ("pending", "sent", "acknowledged"),
    "rejected": ("pending", "sent", "acknowledged"),
    "failed": ("pending", "sent", "acknowledged"),
    "expired": ("scheduled", "pending", "sent"),
    "superseded": ("scheduled", "pending", "sent"),
}
# Steps a status implies, filled in when the unit's answer overtook them.
IMPLIED: dict[str, tuple[str, ...]] = {
    "acknowledged": ("sent",),
    "completed": ("sent", "acknowledged"),
    "failed": ("sent", "acknowledged"),
    "rejected": ("sent",),
    "superseded": ("sent",),
}
# What a unit may answer (CommandAck statuses); `lapsed` records the end of a hold and moves
# no status.
ANSWER_STATUSES = ("acknowledged", "completed", "rejected", "failed", "superseded", "lapsed")

# `expired` is the sweeper's conclusion that no unit got the command in time. An answer whose
# own timestamp is within the command's expiry proves otherwise (it was held up by an outage
# or a restart), so it replaces that conclusion; an answer stamped later never does.
CORRECTS_EXPIRY = frozenset({"acknowledged", "completed", "rejected", "failed"})
# Likewise `failed` by the completion timeout (TIMEOUT_REASON) is the service's conclusion: a
# COMPLETED stamped before that conclusion (held up by a broker outage) replaces it.
TIMEOUT_REASON = "no completion reported within "
# A unit's clock may correct a conclusion only within bounds, so a wrong clock cannot move a
# final status: the answer must arrive within CORRECTION_WINDOW_S of the conclusion, and its
# stamp may be at most CLOCK_SKEW_S before the command existed.
CORRECTION_WINDOW_S = 300
CLOCK_SKEW_S = 30

# Commands whose effect shows in telemetry: `completed` only once it does (SPEC §12), and a
# unit's COMPLETED counts as an acknowledgement until then. They also take a hold.
VERIFIED_TYPES = frozenset({"set_power", "set_mode"})
HOLD_TYPES = VERIFIED_TYPES
EFFECT_TOLERANCE = 0.02  # share of the unit's rated power within which set_power is reached


def applied_status(answered: str, command_type: str) -> str:
    """The status a unit's answer moves its command to."""
    if answered == "completed" and command_type in VERIFIED_TYPES:
        return "acknowledged"  # the telemetry, not the unit's word, completes it
    return answered


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """What the control service needs to know about a unit."""

    unit_id: str
    kind: str
    last_state: str
    last_seen: datetime
    rated_power_kw: float | None


@dataclass(frozen=True, slots=True)
class NewCommand:
    """A command about to be stored: `pending`, `scheduled` (not_before) or `rejected`."""

    command_id: uuid.UUID
    unit_id: str
    kind: str
    type: str
    params: dict[str, Any]
    ttl_s: int
    requested_by: str
    idempotency_key: str | None
    request_digest: str
    not_before: datetime | None = None
    status: str = "pending"
    reason: str | None = None
    group_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class NewGroup:
    """A group request about to be stored with its commands."""

    group_id: uuid.UUID
    selector: dict[str, Any]
    type: str
    params: dict[str, Any]
    ttl_s: int
    not_before: datetime | None
    requested_by: str
    idempotency_key: str | None
    request_digest: str
    command_count: int


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One unit's command in a group, as the group's status shows it."""

    command_id: uuid.UUID
    unit_id: str
    status: str
    reason: str | None
    achieved: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A stored group and its commands."""

    group: NewGroup
    created_at: datetime
    members: list[GroupMember]


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A stored command with the time of each step it went through."""

    command_id: uuid.UUID
    unit_id: str
    kind: str
    type: str
    params: dict[str, Any]
    ttl_s: int
    requested_by: str
    idempotency_key: str | None
    request_digest: str
    seq: int
    status: str
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None
    completed_at: datetime | None
    rejected_at: datetime | None
    failed_at: datetime | None
    expired_at: datetime | None
    reason: str | None
    agent_id: str | None
    publish_attempts: int
    delivery_error: str | None
    not_before: datetime | None = None
    pending_at: datetime | None = None
    superseded_at: datetime | None = None
    superseded_by: uuid.UUID | None = None
    lapsed_at: datetime | None = None
    achieved: dict[str, Any] | None = None
    group_id: uuid.UUID | None = None
