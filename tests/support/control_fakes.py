"""In-memory fakes of the control service's store and publisher (tests/unit), held to the
real repository by tests/integration/test_command_store_contract.py."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from control_service.delivering import DeliveryFailed, Unroutable
from control_service.model import (
    PREDECESSORS,
    CommandRecord,
    NewCommand,
    UnitRecord,
    applied_status,
)


class FakeStore:
    """The CommandStore protocol over dicts; transitions follow the same predecessor table."""

    def __init__(self, *units: UnitRecord) -> None:
        self.units = {unit.unit_id: unit for unit in units}
        self.commands: dict[uuid.UUID, CommandRecord] = {}
        self.answers: list[tuple[uuid.UUID, str, bool]] = []

    async def find_unit(self, unit_id: str) -> UnitRecord | None:
        return self.units.get(unit_id)

    async def insert_command(
        self, new: NewCommand
    ) -> tuple[CommandRecord | None, list[CommandRecord]]:
        if new.idempotency_key and await self.find_by_idempotency_key(
            new.requested_by, new.idempotency_key
        ):
            return None, []
        now = datetime.now(UTC)
        fields: dict[str, Any] = {
            **dataclasses.asdict(new),
            **dict.fromkeys(("sent_at", "acknowledged_at", "completed_at", "rejected_at")),
            **dict.fromkeys(("failed_at", "expired_at", "agent_id", "delivery_error")),
        }
        record = CommandRecord(
            **fields,
            seq=len(self.commands) + 1,
            created_at=now,
            expires_at=(new.not_before or now) + timedelta(seconds=new.ttl_s),
            publish_attempts=0,
        )
        superseded = [
            moved
            for older in list(self.commands.values())
            if older.unit_id == new.unit_id and older.type == new.type
            and (older.status == "scheduled"
                 or (older.status == "pending" and older.publish_attempts == 0))
            if (moved := self._move(older.command_id, "superseded",
                                    superseded_by=new.command_id)) is not None
        ]  # fmt: skip
        self.commands[new.command_id] = record
        return record, superseded

    async def find_by_idempotency_key(self, requested_by: str, key: str) -> CommandRecord | None:
        return next(
            (
                c
                for c in self.commands.values()
                if c.requested_by == requested_by and c.idempotency_key == key
            ),
            None,
        )

    async def get_command(self, command_id: uuid.UUID) -> CommandRecord | None:
        return self.commands.get(command_id)

    # Steps an answer that overtook them stands for: stamped too, as the SQL does (the
    # contract test in tests/integration/test_command_store_contract.py holds both to it).
    IMPLIED: ClassVar[dict[str, tuple[str, ...]]] = {
        "acknowledged": ("sent",),
        "completed": ("sent", "acknowledged"),
        "failed": ("sent", "acknowledged"),
        "rejected": ("sent",),
    }

    def _move(self, command_id: uuid.UUID, status: str, **fields: Any) -> CommandRecord | None:
        command = self.commands[command_id]
        if command.status not in PREDECESSORS[status]:
            return None
        now = datetime.now(UTC)
        for step in self.IMPLIED.get(status, ()):
            fields[f"{step}_at"] = getattr(command, f"{step}_at") or now
        fields[f"{status}_at"] = now
        moved = dataclasses.replace(command, status=status, **fields)
        self.commands[command_id] = moved
        return moved

    async def claim(self, command_ids: list[uuid.UUID]) -> list[CommandRecord]:
        claimed = []
        for command_id in command_ids:
            command = self.commands[command_id]
            if command.status == "pending" and command.publish_attempts == 0:
                attempts = command.publish_attempts + 1
                claimed.append(dataclasses.replace(command, publish_attempts=attempts))
                self.commands[command_id] = claimed[-1]
        return claimed

    async def mark_sent(self, command_ids: list[uuid.UUID]) -> list[CommandRecord]:
        moved = [self._move(i, "sent", delivery_error=None) for i in command_ids]
        return [m for m in moved if m is not None]

    async def fail_unroutable(
        self, command_ids: list[uuid.UUID], reason: str
    ) -> list[CommandRecord]:
        moved = [self._move(i, "failed", reason=reason) for i in command_ids]
        return [m for m in moved if m is not None]

    async def note_delivery_error(self, command_ids: list[uuid.UUID], error: str) -> None:
        for command_id in command_ids:
            self.commands[command_id] = dataclasses.replace(
                self.commands[command_id], delivery_error=error
            )

    async def apply_answer(
        self,
        *,
        command_id: uuid.UUID,
        unit_id: str,
        status: str,
        reason: str | None,
        agent_id: str | None,
        unit_at: datetime | None,
    ) -> tuple[bool, CommandRecord | None]:
        if command_id not in self.commands:
            return False, None
        applied = applied_status(status, self.commands[command_id].type)
        moved = self._move(command_id, applied, reason=reason, agent_id=agent_id)
        self.answers.append((command_id, status, moved is not None))
        return moved is not None, self.commands[command_id]

    async def expire_overdue(self, *, grace_s: float) -> list[CommandRecord]:
        limit = datetime.now(UTC) - timedelta(seconds=grace_s)
        overdue = [c.command_id for c in self.commands.values() if c.expires_at < limit]
        return [m for i in overdue if (m := self._move(i, "expired")) is not None]

    async def fail_unfinished(self, *, timeout_s: float) -> list[CommandRecord]:
        return []

    async def verify_effects(
        self, *, default_rated_power_kw: float, timeout_s: float
    ) -> list[CommandRecord]:
        return []

    async def release_due(self, *, limit: int = 1000) -> list[CommandRecord]:
        now = datetime.now(UTC)
        due = [c.command_id for c in self.commands.values()
               if c.status == "scheduled" and c.not_before and c.not_before <= now]  # fmt: skip
        moved = [self._move(i, "pending") for i in due]
        return [m for m in moved if m is not None]

    async def claim_pending(self, *, idle_s: float, limit: int = 100) -> list[CommandRecord]:
        return [c for c in self.commands.values() if c.status == "pending"][:limit]


class FakePublisher:
    """Records what it publishes; `fail` makes every publish unconfirmed, `unroutable` returned."""

    def __init__(self, *, ready: bool = True, fail: bool = False) -> None:
        self.ready = ready
        self.fail = fail
        self.unroutable = False
        self.published: list[CommandRecord] = []

    async def publish(self, command: CommandRecord) -> None:
        if self.fail:
            raise DeliveryFailed("broker connection is down")
        if self.unroutable:
            raise Unroutable("no unit agent queue takes it")
        self.published.append(command)
