"""Control handlers with an in-memory store and publisher: no network, no database."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from control_service.delivering import DeliveryFailed, Unroutable
from control_service.delivery import decode_answer, encode_command
from control_service.handlers import (
    Answer,
    CommandRequest,
    Defaults,
    apply_answer,
    release_scheduled,
    republish_pending,
    submit_command,
    sweep,
)
from control_service.model import (
    PREDECESSORS,
    CommandRecord,
    NewCommand,
    UnitRecord,
    applied_status,
)
from control_service.rules import Refused
from proto.megapack.v1 import commands_pb2


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


MP = UnitRecord("MP-0001", "megapack", "IDLE", datetime.now(UTC), None)


def request(key: str | None = None, **fields: Any) -> CommandRequest:
    values: dict[str, Any] = {
        "unit_id": "MP-0001",
        "type_name": "set_mode",
        "params": {"mode": "DISCHARGING"},
        "ttl_s": 30,
        "requested_by": "ops",
        "idempotency_key": key,
    }
    return CommandRequest(**{**values, **fields})


async def submit(
    store: FakeStore, publisher: FakePublisher, req: CommandRequest
) -> tuple[CommandRecord, bool]:
    return await submit_command(
        store=store, publisher=publisher, request=req, defaults=Defaults(1927, hold_s=60)
    )


async def test_a_command_is_stored_published_and_marked_sent() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    command, created = await submit(store, publisher, request())
    assert created
    assert command.status == "sent"
    assert [c.command_id for c in publisher.published] == [command.command_id]
    assert command.requested_by == "ops"


async def test_the_same_idempotency_key_returns_the_same_command_and_publishes_once() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    first, _ = await submit(store, publisher, request("k-1"))
    again, created = await submit(store, publisher, request("k-1"))
    assert (again.command_id, created) == (first.command_id, False)
    assert len(publisher.published) == 1
    other_operator, created = await submit(store, publisher, request("k-1", requested_by="ops2"))
    assert created
    assert other_operator.command_id != first.command_id


async def test_an_idempotency_key_reused_for_another_request_is_409() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    await submit(store, publisher, request("k-2"))
    with pytest.raises(Refused) as caught:
        await submit(store, publisher, request("k-2", params={"mode": "CHARGING"}))
    assert caught.value.status == 409
    assert len(store.commands) == 1


async def test_a_retry_is_answered_even_after_the_unit_changed_state() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    first, _ = await submit(store, publisher, request("k-3"))
    store.units["MP-0001"] = dataclasses.replace(MP, last_state="FAULT")
    again, created = await submit(store, publisher, request("k-3"))
    assert (again.command_id, created) == (first.command_id, False)


async def test_unknown_unit_is_404_and_nothing_is_stored() -> None:
    store = FakeStore(MP)
    with pytest.raises(Refused) as caught:
        await submit(store, FakePublisher(), request(unit_id="MP-9999"))
    assert caught.value.status == 404
    assert store.commands == {}


async def test_without_a_broker_nothing_is_created() -> None:
    store = FakeStore(MP)
    with pytest.raises(Refused) as caught:
        await submit(store, FakePublisher(ready=False), request())
    assert caught.value.status == 503
    assert store.commands == {}


async def test_an_unconfirmed_publish_leaves_the_command_pending_for_the_republisher() -> None:
    store, publisher = FakeStore(MP), FakePublisher(fail=True)
    command, _ = await submit(store, publisher, request())
    assert command.status == "pending"
    assert command.delivery_error == "broker connection is down"
    publisher.fail = False
    assert await republish_pending(store=store, publisher=publisher, idle_s=0) == 1
    assert store.commands[command.command_id].status == "sent"
    assert store.commands[command.command_id].delivery_error is None


async def test_answers_move_forward_and_late_or_duplicate_ones_are_ignored() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    soc_limits = {"min_percent": 10, "max_percent": 90}
    command, _ = await submit(
        store, publisher, request(type_name="set_soc_limits", params=soc_limits)
    )

    def answer(status: str) -> Answer:
        return Answer(command.command_id, "MP-0001", status, None, "sim-1", None)

    assert await apply_answer(store=store, answer=answer("acknowledged"))
    assert await apply_answer(store=store, answer=answer("completed"))
    assert not await apply_answer(store=store, answer=answer("acknowledged"))
    assert not await apply_answer(store=store, answer=answer("failed"))
    assert store.commands[command.command_id].status == "completed"
    assert [applied for _, _, applied in store.answers] == [True, True, False, False]


async def test_an_answer_for_an_unknown_command_is_ignored() -> None:
    answer = Answer(uuid.uuid4(), "MP-0001", "completed", None, None, None)
    assert not await apply_answer(store=FakeStore(MP), answer=answer)


async def test_the_sweeper_expires_unanswered_commands_only() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    late, _ = await submit(store, publisher, request(ttl_s=1))
    answered, _ = await submit(store, publisher, request(params={"mode": "IDLE"}))
    await apply_answer(
        store=store, answer=Answer(answered.command_id, "MP-0001", "acknowledged", None, None, None)
    )
    store.commands[late.command_id] = dataclasses.replace(
        store.commands[late.command_id], expires_at=datetime.now(UTC) - timedelta(seconds=5)
    )
    ended = await sweep(
        store=store,
        grace_s=1,
        completion_timeout_s=300,
        effect_timeout_s=30,
        default_rated_power_kw=1927,
    )
    assert [c.command_id for c in ended] == [late.command_id]
    assert store.commands[late.command_id].status == "expired"
    assert store.commands[answered.command_id].status == "acknowledged"


async def test_the_wire_format_carries_expiry_and_answers_decode() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    command, _ = await submit(store, publisher, request())
    wire = commands_pb2.Command.FromString(encode_command(command))
    assert wire.command_id == str(command.command_id)
    assert wire.expires_at_ms - wire.issued_at_ms == 30_000
    assert json.loads(wire.params_json) == {"mode": "DISCHARGING", "hold_s": 60}
    assert wire.seq == command.seq > 0
    ack = commands_pb2.CommandAck(
        command_id=str(command.command_id),
        unit_id="MP-0001",
        status=commands_pb2.COMMAND_ACK_STATUS_REJECTED,
        reason="unit is in MAINTENANCE",
        at_ms=1,
        agent_id="sim-1",
    )
    decoded = decode_answer(ack.SerializeToString())
    assert decoded is not None
    assert (decoded.status, decoded.reason) == ("rejected", "unit is in MAINTENANCE")
    assert decode_answer(b"\xff\x00garbage") is None
    assert decode_answer(commands_pb2.CommandAck(command_id="x").SerializeToString()) is None


async def test_a_units_completed_only_acknowledges_a_verified_command() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    command, _ = await submit(store, publisher, request())
    answer = Answer(command.command_id, "MP-0001", "completed", None, "sim-1", None)
    assert await apply_answer(store=store, answer=answer)
    assert store.commands[command.command_id].status == "acknowledged"  # telemetry decides


async def test_the_default_hold_is_filled_in_and_a_schedule_waits_for_its_time() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled, _ = await submit(store, publisher, request(not_before=later))
    assert (scheduled.status, scheduled.params) == (
        "scheduled",
        {"mode": "DISCHARGING", "hold_s": 60},
    )
    assert scheduled.expires_at == later + timedelta(seconds=30)  # the TTL counts from then
    assert publisher.published == []
    assert await release_scheduled(store=store, publisher=publisher) == 0  # not due yet
    store.commands[scheduled.command_id] = dataclasses.replace(
        scheduled, not_before=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert await release_scheduled(store=store, publisher=publisher) == 1
    assert store.commands[scheduled.command_id].status == "sent"


async def test_a_newer_command_supersedes_a_scheduled_one_which_is_never_published() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    later = datetime.now(UTC) + timedelta(hours=1)
    older, _ = await submit(store, publisher, request(not_before=later))
    newer, _ = await submit(store, publisher, request(params={"mode": "IDLE"}))
    gone = store.commands[older.command_id]
    assert (gone.status, gone.superseded_by) == ("superseded", newer.command_id)
    store.commands[older.command_id] = dataclasses.replace(gone, not_before=datetime.now(UTC))
    assert await release_scheduled(store=store, publisher=publisher) == 0
    assert [c.command_id for c in publisher.published] == [newer.command_id]


async def test_a_command_no_queue_takes_fails_at_once() -> None:
    store, publisher = FakeStore(MP), FakePublisher()
    publisher.unroutable = True
    command, _ = await submit(store, publisher, request())
    assert (command.status, command.reason) == ("failed", "no unit agent queue takes it")


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"not_before": datetime.now(UTC) - timedelta(minutes=5)}, "not_before"),
        ({"not_before": datetime.now(UTC) + timedelta(days=800)}, "not_before"),
        ({"params": {"mode": "IDLE", "hold_s": -1}}, "hold_s"),
        ({"params": {"mode": "IDLE", "hold_s": 10**9}}, "hold_s"),
    ],
)
async def test_hostile_schedule_and_hold_are_422_naming_the_field(
    fields: dict[str, Any], where: str
) -> None:
    store = FakeStore(MP)
    with pytest.raises(Refused) as caught:
        await submit(store, FakePublisher(), request(**fields))
    assert caught.value.status == 422
    assert where in str(caught.value.detail)
    assert store.commands == {}
