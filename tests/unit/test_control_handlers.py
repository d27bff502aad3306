"""Control handlers with an in-memory store and publisher: no network, no database."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

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
    CommandRecord,
    UnitRecord,
)
from control_service.rules import Refused
from proto.megapack.v1 import commands_pb2
from tests.support.control_fakes import FakePublisher, FakeStore

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
