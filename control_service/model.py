"""The command domain: statuses, the moves allowed between them, and the command records.

Both the handlers and the repository (db/commands.py) use these; nothing here does I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STATUSES = ("pending", "sent", "acknowledged", "completed", "rejected", "failed", "expired")
FINAL_STATUSES = frozenset({"completed", "rejected", "failed", "expired"})

# The only moves allowed: a status is written only over one of its predecessors, so a late or
# duplicate answer never moves a command back. An answer may overtake the `sent` step (the
# unit can answer before the broker's confirm reaches us) and COMPLETED may overtake ACK.
PREDECESSORS: dict[str, tuple[str, ...]] = {
    "sent": ("pending",),
    "acknowledged": ("pending", "sent"),
    "completed": ("pending", "sent", "acknowledged"),
    "rejected": ("pending", "sent", "acknowledged"),
    "failed": ("pending", "sent", "acknowledged"),
    "expired": ("pending", "sent"),
}
# Steps a status implies, filled in when the unit's answer overtook them.
IMPLIED: dict[str, tuple[str, ...]] = {
    "acknowledged": ("sent",),
    "completed": ("sent", "acknowledged"),
    "failed": ("sent", "acknowledged"),
    "rejected": ("sent",),
}

# `expired` is the sweeper's conclusion that no unit got the command in time. An answer whose
# own timestamp is within the command's expiry proves otherwise (it was held up by an outage
# or a restart), so it replaces that conclusion; an answer stamped later never does.
CORRECTS_EXPIRY = frozenset({"acknowledged", "completed", "rejected", "failed"})
# Likewise `failed` by the completion timeout (TIMEOUT_REASON) is the service's conclusion: a
# COMPLETED stamped before that conclusion (held up by a broker outage) replaces it.
TIMEOUT_REASON = "no completion reported within "


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
    """A command about to be stored (status `pending`)."""

    command_id: uuid.UUID
    unit_id: str
    kind: str
    type: str
    params: dict[str, Any]
    ttl_s: int
    requested_by: str
    idempotency_key: str | None
    request_digest: str


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
