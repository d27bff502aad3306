"""One contract, two stores: the unit tests' fake (tests/unit/test_control_handlers.py) and the
real repository (db/commands.py) move a command's status the same way, so the handlers' unit
tests cannot keep passing on a fake that drifted from the SQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
import pytest

from common.db import create_pool
from control_service.delivering import DeliveryStore
from control_service.handlers import CommandStore
from control_service.model import CommandRecord, NewCommand, UnitRecord
from db.commands import CommandRepository
from tests.support.control_fakes import FakeStore
from tests.support.databases import create_database, drop_database

UNIT = "MP-CONTRACT"
# How a fresh command is brought to each status through the store's own moves.
STEPS: dict[str, tuple[str, ...]] = {
    "pending": (),
    "sent": ("sent",),
    "acknowledged": ("sent", "acknowledged"),
    "completed": ("sent", "acknowledged", "completed"),
    "rejected": ("sent", "rejected"),
    "failed": ("sent", "acknowledged", "failed"),
    "expired": ("sent", "expired"),
    "superseded": ("superseded",),
}
# The contract (SPEC §5, §12), spelled out here rather than read from the code under test:
# pending -> sent -> acknowledged -> completed, or rejected / failed / expired, never back;
# an answer may overtake `sent` (and COMPLETED an ACK); only pending or sent commands expire;
# a newer command of the same type supersedes one still pending (the move `superseded` here).
ALLOWED: dict[str, set[str]] = {
    "pending": {"sent", "acknowledged", "completed", "rejected", "failed", "expired", "superseded"},
    "sent": {"acknowledged", "completed", "rejected", "failed", "expired"},
    "acknowledged": {"completed", "rejected", "failed"},
    "completed": set(),
    "rejected": set(),
    "failed": set(),
    "expired": set(),
    "superseded": set(),
}
# The steps a status stands for: each has its timestamp once the status is reached.
PATH = {"acknowledged": ("sent",), "completed": ("sent", "acknowledged")}
MOVES = ("sent", "acknowledged", "completed", "rejected", "failed", "expired", "superseded")


class Store(CommandStore, DeliveryStore, Protocol):
    """What the contract drives: the handlers' store and the deliverer's."""


@pytest.fixture(scope="module", params=["fake", "repository"])
async def store(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Store]:
    """The fake, then the real repository on a database of its own (expiry sweeps it all)."""
    if request.param == "fake":
        yield FakeStore(UnitRecord(UNIT, "megapack", "IDLE", datetime.now(UTC), None))
        return
    url = await create_database(database_url, prefix="contract")
    conn = await asyncpg.connect(url)
    await conn.execute(
        "INSERT INTO units (unit_id, kind, site_id, last_seen, last_state, last_soc_percent)"
        " VALUES ($1, 'megapack', 'SITE-01', now(), 'IDLE', 50)",
        UNIT,
    )
    await conn.close()
    pool = await create_pool(url, max_size=2)
    yield CommandRepository(pool)
    await pool.close()
    await drop_database(url)


# A type whose COMPLETED is final at once (set_power / set_mode wait for their effect).
async def _insert(store: Store) -> tuple[CommandRecord | None, list[CommandRecord]]:
    new = NewCommand(
        command_id=uuid.uuid4(), unit_id=UNIT, kind="megapack", type="set_soc_limits",
        params={"min_percent": 10, "max_percent": 90}, ttl_s=30, requested_by="ops",
        idempotency_key=None, request_digest="digest",
    )  # fmt: skip
    return await store.insert_command(new)


async def _new_command(store: Store) -> CommandRecord:
    command, _ = await _insert(store)
    assert command is not None
    assert command.status == "pending"
    return command


async def _move(store: Store, command_id: uuid.UUID, status: str) -> bool:
    """Attempt one move the way the service makes it; True when the status changed."""
    if status == "sent":
        await store.claim([command_id])
        return command_id in {c.command_id for c in await store.mark_sent([command_id])}
    if status == "superseded":  # a newer command of the same type to the same unit
        _, superseded = await _insert(store)
        return command_id in {c.command_id for c in superseded}
    if status == "expired":  # a grace of minus an hour: every unexpired command is overdue
        return command_id in {c.command_id for c in await store.expire_overdue(grace_s=-3600)}
    moved, _ = await store.apply_answer(
        command_id=command_id, unit_id=UNIT, status=status, reason=None, agent_id="agent",
        unit_at=None,
    )  # fmt: skip
    return moved


@pytest.mark.parametrize("start", list(STEPS))
@pytest.mark.parametrize("status", MOVES)
async def test_a_status_moves_only_forward(store: Store, start: str, status: str) -> None:
    command = await _new_command(store)
    for step in STEPS[start]:
        assert await _move(store, command.command_id, step), f"{step} on the way to {start}"
    moved = await _move(store, command.command_id, status)
    after = await store.get_command(command.command_id)
    assert after is not None
    assert moved == (status in ALLOWED[start]), f"{start} -> {status}"
    assert after.status == (status if moved else start)
    if moved:
        for step in (*PATH.get(status, ()), status):
            assert getattr(after, f"{step}_at") is not None, f"{start} -> {status}: {step}_at"


@pytest.mark.parametrize("status", ["acknowledged", "completed", "rejected", "failed"])
async def test_the_same_answer_twice_moves_once(store: Store, status: str) -> None:
    command = await _new_command(store)
    assert await _move(store, command.command_id, "sent")
    assert await _move(store, command.command_id, status)
    first = await store.get_command(command.command_id)
    assert not await _move(store, command.command_id, status)
    assert await store.get_command(command.command_id) == first


async def test_a_units_superseded_answer_moves_a_sent_command_once(store: Store) -> None:
    # The unit's own refusal of a command older than one it already carried out (a redelivery
    # after a broker failover): the move takes the same parameters as every other answer.
    command = await _new_command(store)
    assert await _move(store, command.command_id, "sent")
    for expected in (True, False):
        moved, after = await store.apply_answer(
            command_id=command.command_id, unit_id=UNIT, status="superseded",
            reason="older than the command carried out", agent_id="agent",
            unit_at=datetime.now(UTC),
        )  # fmt: skip
        assert moved is expected
        assert after is not None
        assert after.status == "superseded"
        assert after.superseded_at is not None
